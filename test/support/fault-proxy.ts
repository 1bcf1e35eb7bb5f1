import { createServer, type Server, Socket } from "node:net";

/**
 * How the proxy treats the bytes between the service and its database:
 * - pass: forwards them;
 * - stall: forwards nothing and holds every socket open (new ones too), as a network that stops
 *   answering; what arrived meanwhile, closes included, goes on when the mode changes back;
 * - reset: destroys every socket (RST) and refuses new ones, as a database that went down;
 * - slow: forwards each chunk `delayMs` late, in order.
 */
export type FaultMode = "pass" | "stall" | "reset" | "slow";

/** One direction of one connection: chunks queue here and leave as the mode allows. */
class Pipe {
  private readonly queue: Buffer[] = [];
  private ended = false;
  private waiting = false;

  constructor(
    private readonly proxy: FaultProxy,
    readonly from: Socket,
    readonly to: Socket,
  ) {
    from.on("data", (chunk: Buffer) => {
      this.queue.push(chunk);
      this.pump();
    });
    from.on("close", () => {
      this.ended = true;
      this.pump();
    });
  }

  pump(): void {
    if (this.waiting || this.proxy.mode === "stall" || this.proxy.mode === "reset") return;
    if (this.proxy.mode === "slow" && this.queue.length > 0) {
      this.waiting = true;
      setTimeout(() => {
        this.waiting = false;
        const chunk = this.queue.shift();
        if (chunk && !this.to.destroyed) this.to.write(chunk);
        this.pump();
      }, this.proxy.delayMs);
      return;
    }
    for (let chunk = this.queue.shift(); chunk; chunk = this.queue.shift()) if (!this.to.destroyed) this.to.write(chunk);
    if (this.ended && !this.to.destroyed) this.to.end();
  }
}

/** A TCP proxy on loopback in front of `target`, whose faults a test switches (FaultMode). */
export class FaultProxy {
  mode: FaultMode = "pass";
  delayMs = 0;
  private readonly sockets = new Set<Socket>();
  private readonly pipes = new Set<Pipe>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = createServer((client) => proxy?.accept(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the proxy has no port");
    proxy = new FaultProxy(server, address.port);
    return proxy;
  }

  /** The URL of `url`'s database through this proxy. */
  url(url: string): string {
    const u = new URL(url);
    u.hostname = "127.0.0.1";
    u.port = String(this.port);
    return u.toString();
  }

  /** Connections the proxy holds (client side). */
  get connections(): number {
    return [...this.sockets].filter((s) => !s.destroyed).length / 2;
  }

  pass(): void {
    this.set("pass");
  }

  stall(): void {
    this.set("stall");
  }

  /** Destroys every connection and refuses new ones until the mode changes. */
  reset(): void {
    this.set("reset");
    for (const socket of this.sockets) reset(socket);
    this.sockets.clear();
    this.pipes.clear();
  }

  slow(delayMs: number): void {
    this.delayMs = delayMs;
    this.set("slow");
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private set(mode: FaultMode): void {
    this.mode = mode;
    for (const pipe of this.pipes) pipe.pump();
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    client.on("error", () => {});
    if (this.mode === "reset") {
      reset(client);
      return;
    }
    const upstream = new Socket();
    upstream.on("error", () => {});
    upstream.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    }
    const pipes = [new Pipe(this, client, upstream), new Pipe(this, upstream, client)];
    for (const pipe of pipes) {
      this.pipes.add(pipe);
      pipe.from.on("close", () => {
        if (pipe.to.destroyed) for (const p of pipes) this.pipes.delete(p);
      });
    }
  }
}

function reset(socket: Socket): void {
  if (typeof socket.resetAndDestroy === "function" && !socket.destroyed && !socket.connecting) socket.resetAndDestroy();
  else socket.destroy();
}
