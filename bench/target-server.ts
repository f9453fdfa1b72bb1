// Bench target: /hook answers 200 with no body, /call answers the request message
// of the payload (a call target that changes nothing, but parses and replies),
// /events answers 200 with no body and counts the deliveries, which
// GET /events/count reports as {"count":n,"lastAt":<epoch ms of the last one>}.
import http from "node:http";
import type { AddressInfo } from "node:net";

let events = 0;
let lastEventAt = 0;

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
    if (req.url === "/events/count") {
      const body = JSON.stringify({ count: events, lastAt: lastEventAt });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (req.url === "/events") {
      events++;
      lastEventAt = Date.now();
    }
    res.writeHead(200, { "content-length": 0 });
    res.end();
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
