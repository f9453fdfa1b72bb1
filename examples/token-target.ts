import http from "node:http";
import { decryptJwePayload, verifyJwtPayload, verifySignature } from "connect-actions";

// A target of payload type jwt or jwe: its body is a token, not JSON. It verifies the ZITADEL-Signature over the
// token (which checks its time), then verifies (jwt) or decrypts and verifies (jwe) the token and reads the payload.
// JWKS_URL: the service's public keys (the sample serves them at /oauth/v2/keys); TARGET_SIGNING_KEY: the signing
// key CreateTarget returned; TARGET_PRIVATE_KEY: for a jwe target, the PEM private key of the public key that
// AddPublicKey added (and ActivatePublicKey activated).
const jwks = process.env.JWKS_URL ?? "http://localhost:8080/oauth/v2/keys";
const signingKey = process.env.TARGET_SIGNING_KEY ?? "";
const privateKey = process.env.TARGET_PRIVATE_KEY;

interface Payload {
  readonly fullMethod: string;
  readonly request: { readonly profile?: { readonly givenName?: string } };
}

http
  .createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", async () => {
      const token = Buffer.concat(chunks).toString("utf8");
      let payload: Payload;
      try {
        verifySignature(token, req.headers["zitadel-signature"], signingKey);
        payload =
          privateKey === undefined
            ? await verifyJwtPayload<Payload>(token, { jwks })
            : await decryptJwePayload<Payload>(token, { privateKey, jwks });
      } catch {
        res.writeHead(401).end();
        return;
      }
      console.log(payload.fullMethod, payload.request.profile?.givenName);
      res.writeHead(200).end(); // a call target answers JSON, as for any payload type
    });
  })
  .listen(Number(process.env.PORT ?? 8090));
