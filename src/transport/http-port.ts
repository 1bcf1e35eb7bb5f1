import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";

export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

export interface HttpPortTls {
  cert: Buffer;
  key: Buffer;
  clientCa: Buffer | undefined;
}

/** What an HTTP/2 connection starts with (RFC 9113 §3.4), without TLS ("prior knowledge", h2c). */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One port speaking HTTP/1.1 and HTTP/2 with the same handler: Connect's and gRPC's streaming
 * calls need HTTP/2, browsers, curl and REST callers mostly speak HTTP/1.1. With TLS the protocol
 * is agreed by ALPN (h2, http/1.1); without, a connection that opens with HTTP/2's preface is
 * HTTP/2 (h2c with prior knowledge), any other HTTP/1.1.
 */
export class HttpPort {
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly listener: net.Server;
  private readonly sessions = new Set<http2.Http2Session>();
  /** Cleartext connections that have not yet said which protocol they speak. */
  private readonly undecided = new Set<net.Socket>();

  constructor(handler: RequestHandler, tlsOptions: HttpPortTls | undefined) {
    this.h1 = http.createServer(handler as http.RequestListener);
    this.h2 = http2.createServer({}, handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
    this.h2.on("session", (session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
    });
    if (!tlsOptions) {
      this.listener = net.createServer((socket) => this.sniff(socket));
      return;
    }
    const { cert, key, clientCa } = tlsOptions;
    // With a client CA, certificates are asked for but not required: store callers use tokens.
    this.listener = tls.createServer(
      { cert, key, ALPNProtocols: ["h2", "http/1.1"], ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: false } : {}) },
      (socket) => (socket.alpnProtocol === "h2" ? this.h2 : this.h1).emit("connection", socket),
    );
  }

  /** Hands a cleartext connection to the server of its protocol once its first bytes tell which. */
  private sniff(socket: net.Socket): void {
    let seen: Buffer = Buffer.alloc(0);
    this.undecided.add(socket);
    socket.once("close", () => this.undecided.delete(socket));
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const h2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2 && seen.length < PREFACE.length) return;
      socket.off("data", onData);
      this.undecided.delete(socket);
      socket.pause();
      socket.unshift(seen);
      if (h2) {
        // The HTTP/2 session reads what is buffered itself (socket.read()), then the socket's handle.
        this.h2.emit("connection", socket);
      } else {
        this.h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  }

  /** Binds; resolves to the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.listener.once("error", reject);
      this.listener.listen(port, host, () => {
        this.listener.off("error", reject);
        // Starts the HTTP/1.1 server's connection tracking (idle and header timeouts).
        this.h1.emit("listening");
        const address = this.listener.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  /**
   * Stops accepting, lets requests and streams in flight finish (HTTP/1.1 connections closed as
   * they go idle, HTTP/2 sessions told to go away), then closes what remains after `graceMs`.
   */
  close(graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.h1.closeAllConnections();
        for (const session of this.sessions) session.destroy();
      }, graceMs);
      // A keep-alive connection whose request finishes during the stop would otherwise stay open
      // until its keep-alive timeout (5 s), and the stop with it: close connections as they go idle.
      const idle = setInterval(() => this.h1.closeIdleConnections(), 50);
      this.listener.close(() => {
        clearTimeout(timer);
        clearInterval(idle);
        resolve();
      });
      this.h1.close();
      for (const socket of this.undecided) socket.destroy();
      for (const session of this.sessions) session.close();
    });
  }
}
