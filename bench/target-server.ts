// Bench target: /hook answers 200 with no body, /call answers the request message
// of the payload (a call target that changes nothing, but parses and replies).
import http from "node:http";
import type { AddressInfo } from "node:net";

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    if (req.url === "/call") {
      const payload = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { request: unknown };
      const body = JSON.stringify(payload.request);
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(200, { "content-length": 0 });
    res.end();
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
