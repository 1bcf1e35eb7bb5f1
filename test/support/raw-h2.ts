import * as net from "node:net";

/**
 * A hostile HTTP/2 client written frame by frame (RFC 9113), cleartext with prior knowledge: it
 * opens streams without ending them and without heeding the server's SETTINGS (node:http2's
 * client would queue streams above the server's limit instead of sending them). It never
 * acknowledges the server's SETTINGS, so a server refusing a stream answers RST_STREAM
 * REFUSED_STREAM rather than ending the connection.
 */
export interface RawH2Connection {
  socket: net.Socket;
  /** Streams the server reset, by error code. */
  resets: Map<number, number>;
  /** Error code of the server's first GOAWAY, when one came, and its debug data. */
  goaway: number | undefined;
  goawayData: string;
  /** Response HEADERS frames received (a stream the server answered). */
  responses: number;
  closed: Promise<void>;
  /** Opens `count` more streams (HEADERS without END_STREAM, so each waits for its body). */
  openStreams(count: number, headers: Record<string, string>): void;
  /** Sends a PING (the server answers it on its own). */
  ping(): void;
}

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
export const REFUSED_STREAM = 0x7;
export const ENHANCE_YOUR_CALM = 0xb;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const PING = 0x6;
const GOAWAY = 0x7;
const END_HEADERS = 0x4;

export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK literal without indexing, name from the static table (RFC 7541 §6.2.2, no Huffman). */
function literal(nameIndex: number, value: string): Buffer {
  const v = Buffer.from(value);
  if (v.length >= 127) throw new Error("header value too long for this encoder");
  const name = nameIndex < 15 ? [nameIndex] : [0x0f, nameIndex - 15];
  return Buffer.concat([Buffer.from(name), Buffer.from([v.length]), v]);
}

/** HPACK literal without indexing with a new name. */
function literalNew(name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

const STATIC: Record<string, number> = { ":authority": 1, ":path": 4, "content-type": 31 };

/** `:method POST`, `:scheme http`, then the given headers. */
export function requestBlock(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [Buffer.from([0x83, 0x86])];
  for (const [name, value] of Object.entries(headers)) {
    const index = STATIC[name];
    parts.push(index === undefined ? literalNew(name, value) : literal(index, value));
  }
  return Buffer.concat(parts);
}

export function rawH2(port: number): Promise<RawH2Connection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let nextStream = 1;
    let pending = Buffer.alloc(0);
    const connection: RawH2Connection = {
      socket,
      resets: new Map(),
      goaway: undefined,
      goawayData: "",
      responses: 0,
      closed: new Promise((r) => socket.once("close", () => r())),
      openStreams(count, headers) {
        const block = requestBlock(headers);
        const frames: Buffer[] = [];
        for (let i = 0; i < count; i++) {
          frames.push(frame(HEADERS, END_HEADERS, nextStream, block));
          nextStream += 2;
        }
        if (!socket.destroyed) socket.write(Buffer.concat(frames));
      },
      ping() {
        if (!socket.destroyed) socket.write(frame(PING, 0, 0, Buffer.alloc(8)));
      },
    };
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        const type = pending.readUInt8(3);
        const payload = pending.subarray(9, 9 + length);
        if (type === RST_STREAM) {
          const code = payload.readUInt32BE(0);
          connection.resets.set(code, (connection.resets.get(code) ?? 0) + 1);
        } else if (type === GOAWAY) {
          // The first one's: a second (NO_ERROR) may follow as the server closes.
          if (connection.goaway === undefined) {
            connection.goaway = payload.readUInt32BE(4);
            connection.goawayData = payload.subarray(8).toString("latin1");
          }
        } else if (type === HEADERS) {
          connection.responses++;
        }
        pending = pending.subarray(9 + length);
      }
    });
    socket.on("error", () => {});
    socket.once("connect", () => {
      socket.write(Buffer.concat([PREFACE, frame(0x4, 0, 0, Buffer.alloc(0))]));
      resolve(connection);
    });
    socket.once("close", () => reject(new Error("closed before connecting")));
  });
}

/** Resolves once `socket` closes, with how long that took; rejects after `withinMs`. */
export function closedWithin(socket: net.Socket, withinMs: number): Promise<number> {
  const started = performance.now();
  if (socket.destroyed) return Promise.resolve(0);
  // A socket nobody reads never sees the server's FIN.
  if (socket.listenerCount("data") === 0) socket.resume();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not close the connection within ${withinMs} ms`)), withinMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(performance.now() - started);
    });
  });
}

/** A plain TCP connection that has connected (the kernel accepts before the server's cap applies). */
export function tcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {});
    socket.once("connect", () => resolve(socket));
    socket.once("close", () => reject(new Error("closed before connecting")));
  });
}
