import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

/**
 * CleartextServer serves HTTP/1.1 and HTTP/2 without TLS on one port.
 */
export interface CleartextServer {
  /** The port the server listens on. */
  readonly port: number;
  /** close stops accepting connections and ends open ones at once, with the requests they carry. */
  close(): Promise<void>;
  /**
   * shutdown stops accepting connections and lets the requests in flight
   * finish: idle HTTP/1.1 connections are closed (busy ones after their
   * response, which says "Connection: close"), HTTP/2 sessions get a GOAWAY
   * and finish their streams. Once no request is in flight, or when `signal`
   * aborts (the end of the grace period), it closes what is left, as close().
   */
  shutdown(signal?: AbortSignal): Promise<void>;
  /** inFlight returns the number of requests being served. */
  inFlight(): number;
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
  let inFlight = 0;
  let draining = false;
  let onIdle: (() => void) | undefined;
  const counted: Handler = (req, res) => {
    inFlight++;
    if (draining && "shouldKeepAlive" in res) res.shouldKeepAlive = false;
    res.once("close", () => {
      inFlight--;
      if (draining) {
        h1.closeIdleConnections();
        if (inFlight === 0) onIdle?.();
      }
    });
    handler(req, res);
  };
  const h1 = http.createServer({ keepAliveTimeout: 65_000 }, counted);
  const h2 = http2.createServer({}, counted);
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
      // Emitted once the server stopped listening and its last connection is gone.
      const closed = new Promise<void>((done) => server.once("close", () => done()));
      const closeAll = async () => {
        if (server.listening) server.close();
        for (const s of sessions) s.destroy();
        h1.closeAllConnections();
        for (const s of sockets) s.destroy();
        await closed;
      };
      resolve({
        port: address.port,
        close: closeAll,
        inFlight: () => inFlight,
        async shutdown(signal) {
          draining = true;
          if (server.listening) server.close(); // no new connections
          h1.closeIdleConnections();
          for (const s of sessions) s.close(); // GOAWAY: streams in flight finish
          if (inFlight > 0 && signal?.aborted !== true) {
            await new Promise<void>((done) => {
              onIdle = done;
              signal?.addEventListener("abort", () => done(), { once: true });
            });
          }
          onIdle = undefined;
          await closeAll();
        },
      });
    });
  });
}
