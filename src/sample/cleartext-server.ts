import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

/**
 * CleartextServer serves HTTP/1.1 and HTTP/2 without TLS on one port.
 */
export interface CleartextServer {
  /** The port the server listens on. */
  readonly port: number;
  /** close stops accepting connections and ends open ones. */
  close(): Promise<void>;
}

/**
 * CleartextServerOptions configures listenCleartext.
 */
export interface CleartextServerOptions {
  /** Port, default 0 (any free port). */
  readonly port?: number;
  /** Host, default "127.0.0.1". */
  readonly host?: string;
}

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * listenCleartext serves `handler` over HTTP/1.1 (Connect, gRPC-web, REST,
 * curl) and prior-knowledge HTTP/2 (gRPC, h2c) on one port: it peeks at the
 * first bytes of each connection and hands it to the matching Node.js server.
 */
export function listenCleartext(handler: Handler, options: CleartextServerOptions = {}): Promise<CleartextServer> {
  const h1 = http.createServer({ keepAliveTimeout: 65_000 }, handler);
  const h2 = http2.createServer({}, handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, preface.length);
      const isH2 = seen.subarray(0, n).equals(preface.subarray(0, n));
      if (isH2 && seen.length < preface.length) return; // need more bytes to decide
      socket.off("data", onData);
      socket.pause();
      socket.unshift(seen);
      if (isH2) {
        // The HTTP/2 session reads what is buffered itself, then the handle.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo;
      resolve({
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const s of sessions) s.close();
            h1.closeAllConnections();
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}
