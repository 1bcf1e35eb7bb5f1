import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";

export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** The bounds of the port's connections and streams (README, Limits; config `[key_manager.http]`). */
export interface HttpConnectionLimits {
  /** Connections open at once; more are closed as they arrive. */
  maxConnections: number;
  /** HTTP/1.1 headers, a new connection's first bytes and the TLS handshake. */
  headersTimeoutMs: number;
  /** A whole HTTP/1.1 request. */
  requestTimeoutMs: number;
  /** An HTTP/1.1 connection between requests. */
  keepAliveTimeoutMs: number;
  /** An HTTP/2 connection without open streams; an HTTP/1.1 connection without traffic. */
  idleTimeoutMs: number;
  /** Streams of one HTTP/2 connection open at once. */
  maxConcurrentStreams: number;
  maxSessionMemoryMb: number;
}

export const DEFAULT_HTTP_CONNECTION_LIMITS: HttpConnectionLimits = {
  maxConnections: 4096,
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  maxConcurrentStreams: 100,
  maxSessionMemoryMb: 10,
};

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
  /** Connections closed on arrival because `maxConnections` were open. */
  refusedConnections = 0;

  constructor(
    handler: RequestHandler,
    tlsOptions: HttpPortTls | undefined,
    private readonly limits: HttpConnectionLimits = DEFAULT_HTTP_CONNECTION_LIMITS,
  ) {
    this.h1 = http.createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // How often the header and request timeouts are checked: Node's default (30 s) would let
        // a slowloris client hold on long past a short headers timeout.
        connectionsCheckingInterval: Math.min(1000, Math.ceil(limits.headersTimeoutMs / 4)),
      },
      handler as http.RequestListener,
    );
    // A connection that sends and receives nothing this long is destroyed (no 'timeout' listener).
    this.h1.timeout = limits.idleTimeoutMs;
    this.h2 = http2.createServer(
      { settings: { maxConcurrentStreams: limits.maxConcurrentStreams }, maxSessionMemory: limits.maxSessionMemoryMb },
      handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
    );
    this.h2.on("session", (session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
      closeWhenIdle(session, limits.idleTimeoutMs);
    });
    if (!tlsOptions) {
      this.listener = net.createServer((socket) => this.sniff(socket));
    } else {
      const { cert, key, clientCa } = tlsOptions;
      // With a client CA, certificates are asked for but not required: store callers use tokens.
      this.listener = tls.createServer(
        {
          cert,
          key,
          ALPNProtocols: ["h2", "http/1.1"],
          handshakeTimeout: limits.headersTimeoutMs,
          ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: false } : {}),
        },
        (socket) => (socket.alpnProtocol === "h2" ? this.h2 : this.h1).emit("connection", socket),
      );
    }
    // Above the cap a connection is closed as soon as it is accepted (Node's maxConnections),
    // before any byte is read: it costs a file descriptor for an instant, not memory.
    this.listener.maxConnections = limits.maxConnections;
    this.listener.on("drop", () => {
      this.refusedConnections++;
    });
  }

  /** Hands a cleartext connection to the server of its protocol once its first bytes tell which. */
  private sniff(socket: net.Socket): void {
    let seen: Buffer = Buffer.alloc(0);
    this.undecided.add(socket);
    socket.once("close", () => this.undecided.delete(socket));
    // A connection that says nothing is closed after the headers timeout.
    socket.setTimeout(this.limits.headersTimeoutMs, () => socket.destroy());
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const h2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2 && seen.length < PREFACE.length) return;
      socket.off("data", onData);
      socket.setTimeout(0);
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

/**
 * Closes an HTTP/2 connection (GOAWAY, then the socket) once it has had no stream open for
 * `idleMs`: an idle connection costs a file descriptor and a session's buffers, and HTTP/2 has
 * no timeout of its own for it (Node's session timeout counts bytes, not streams, so it would
 * also cut a quiet stream).
 */
function closeWhenIdle(session: http2.ServerHttp2Session, idleMs: number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => session.close(), idleMs);
    timer.unref();
  };
  session.on("stream", (stream) => {
    open++;
    clearTimeout(timer);
    timer = undefined;
    stream.once("close", () => {
      open--;
      if (open === 0 && !session.closed && !session.destroyed) arm();
    });
  });
  session.once("close", () => clearTimeout(timer));
  arm();
}
