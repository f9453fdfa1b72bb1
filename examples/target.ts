import http from "node:http";
import { verifySignature } from "connect-actions";

// A `call` target: it verifies the ZITADEL-Signature, then answers the request it got with a change.
// The signing key is the one CreateTarget returned (TARGET_SIGNING_KEY); during a rotation pass [newKey, oldKey].
const signingKey = process.env.TARGET_SIGNING_KEY ?? "";

http
  .createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      try {
        verifySignature(body, req.headers["zitadel-signature"], signingKey); // tolerance 300 s
      } catch {
        res.writeHead(401).end();
        return;
      }
      const { request } = JSON.parse(body) as { request: { name: string } };
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ...request, name: request.name.toUpperCase() }));
    });
  })
  .listen(Number(process.env.PORT ?? 8090));
