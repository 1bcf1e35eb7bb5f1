import assert from "node:assert/strict";
import { once } from "node:events";
import * as http2 from "node:http2";
import { describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { http2StreamOf, type WriteAheadStats, writeAheadInterceptor } from "../src/transport/grpc-write-ahead.js";

const ECHO_PATH = "/test.Echo/Echo";

/** What one echo call saw on the server: HTTP/2 writes, answers in flight at most, how it ended. */
interface CallProbe {
  /** Calls of the HTTP/2 stream's _write and _writev (each one write to the session). */
  writes: number;
  /** Answers handed to grpc-js's innermost call whose write had not called back, at most. */
  maxInFlight: number;
  /** Answers the handler wrote (call.write). */
  written: number;
  cancelled: boolean;
}

interface EchoServer {
  port: number;
  stats: WriteAheadStats;
  probes: CallProbe[];
  close(): void;
}

/**
 * A grpc-js server whose one bidi method echoes each message back (pipe: write() false pauses the
 * reading), with the write-ahead interceptor; `front` interceptors are put before it (grpc-js
 * gives the first one its innermost call). Every call's HTTP/2 writes and writes in flight are counted.
 */
async function echoServer(limit: number, front: grpc.ServerInterceptor[] = []): Promise<EchoServer> {
  const stats: WriteAheadStats = { corked: 0, plain: 0 };
  const probes: CallProbe[] = [];
  const writeAhead = writeAheadInterceptor(limit, stats);
  const probing: grpc.ServerInterceptor = (method, call) => {
    const probe: CallProbe = { writes: 0, maxInFlight: 0, written: 0, cancelled: false };
    probes.push(probe);
    const stream = http2StreamOf(call);
    if (stream) countWrites(stream, probe);
    let inFlight = 0;
    const send = call.sendMessage.bind(call);
    call.sendMessage = (message, callback) => {
      inFlight++;
      probe.maxInFlight = Math.max(probe.maxInFlight, inFlight);
      send(message, () => {
        inFlight--;
        callback();
      });
    };
    return writeAhead(method, call);
  };
  const server = new grpc.Server({ interceptors: [...front, probing] });
  const passThrough = (b: Buffer) => b;
  server.addService(
    {
      echo: {
        path: ECHO_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: passThrough,
        requestDeserialize: passThrough,
        responseSerialize: passThrough,
        responseDeserialize: passThrough,
      },
    },
    {
      echo: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        const probe = probes.at(-1);
        call.on("cancelled", () => {
          if (probe) probe.cancelled = true;
        });
        const write = call.write.bind(call);
        call.write = ((chunk: Buffer, ...rest: never[]) => {
          if (probe) probe.written++;
          return write(chunk, ...rest);
        }) as typeof call.write;
        call.pipe(call as unknown as NodeJS.WritableStream);
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, stats, probes, close: () => server.forceShutdown() };
}

function countWrites(stream: http2.Http2Stream, probe: CallProbe): void {
  const s = stream as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = s._write.bind(stream);
  const writev = s._writev.bind(stream);
  s._write = (...a) => {
    probe.writes++;
    write(...a);
  };
  s._writev = (...a) => {
    probe.writes++;
    writev(...a);
  };
}

/** Message `i` of `size` bytes: its number first. */
function message(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, 0x61);
  b.writeUInt32BE(i, 0);
  return b;
}

/** A gRPC message's frame: not compressed, its length, its bytes. */
function grpcFrame(bytes: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

/** The numbers of the framed messages of a gRPC body. */
function grpcMessages(body: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at < body.length; at += 5 + body.readUInt32BE(at + 1)) out.push(body.readUInt32BE(at + 5));
  return out;
}

function echoCall(client: grpc.Client): grpc.ClientDuplexStream<Buffer, Buffer> {
  const passThrough = (b: Buffer) => b;
  return client.makeBidiStreamRequest(ECHO_PATH, passThrough, passThrough);
}

function ended(call: grpc.ClientDuplexStream<Buffer, Buffer>): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    call.on("error", () => {});
    call.on("status", resolve);
  });
}

/** Writes `count` messages on a new call (respecting the client's backpressure) and reads every answer. */
async function echoAll(port: number, count: number, size = 64): Promise<{ answers: number[]; status: grpc.StatusObject }> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const call = echoCall(client);
    const answers: number[] = [];
    call.on("data", (b: Buffer) => answers.push(b.readUInt32BE(0)));
    const status = ended(call);
    for (let i = 0; i < count; i++) if (!call.write(message(i, size))) await once(call, "drain");
    call.end();
    return { answers, status: await status };
  } finally {
    client.close();
  }
}

const inOrder = (count: number) => Array.from({ length: count }, (_, i) => i);

/** Resolves once `value()` has not changed for `quietMs`. */
async function settled(value: () => number, quietMs = 300): Promise<void> {
  for (let last = Number.NaN; last !== value(); ) {
    last = value();
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

describe("grpc-write-ahead: a bidi stream's answers written ahead, corked in bursts", () => {
  const MESSAGES = 20_000;
  for (const limit of [128, 0]) {
    test(`write-ahead ${limit === 0 ? "off (0)" : limit}: ${MESSAGES} pipelined messages answered complete and in order`, async () => {
      const server = await echoServer(limit);
      try {
        const { answers, status } = await echoAll(server.port, MESSAGES);
        assert.equal(status.code, grpc.status.OK, status.details);
        assert.deepEqual(answers, inOrder(MESSAGES));
        const probe = server.probes[0];
        assert.ok(probe);
        if (limit === 0) {
          assert.deepEqual(server.stats, { corked: 0, plain: 0 });
          // grpc-js alone: one answer in flight, one HTTP/2 write per answer.
          assert.equal(probe.maxInFlight, 1);
          assert.equal(probe.writes, MESSAGES);
        } else {
          assert.deepEqual(server.stats, { corked: 1, plain: 0 });
          assert.ok(probe.maxInFlight > 1 && probe.maxInFlight <= limit, `in flight at most ${probe.maxInFlight}`);
          // Bursts: several answers per HTTP/2 write. grpc-js reads one message per read, so the
          // echo's answers come a few per event-loop turn (2 per write here; off: 1).
          assert.ok(probe.writes < MESSAGES * 0.75, `${probe.writes} HTTP/2 writes for ${MESSAGES} answers`);
        }
        console.log(`write-ahead ${limit}: ${probe.writes} HTTP/2 writes for ${MESSAGES} answers, at most ${probe.maxInFlight} in flight`);
      } finally {
        server.close();
      }
    });
  }

  test("a reader that does not read: at most `limit` answers in flight, the handler held back; once it reads, every answer in order", async () => {
    const LIMIT = 8;
    const COUNT = 2000;
    const server = await echoServer(LIMIT);
    // node:http2's client: a response stream not read is not consumed, so its flow-control window
    // is not given back (grpc-js's client reads on into memory even when paused).
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    try {
      const req = session.request({ ":method": "POST", ":path": ECHO_PATH, "content-type": "application/grpc", te: "trailers" });
      req.pause();
      const writing = (async () => {
        for (let i = 0; i < COUNT; i++) if (!req.write(grpcFrame(message(i, 16 * 1024)))) await once(req, "drain");
        req.end();
      })();
      // 16 KiB answers: flow control (64 KiB windows) stops the server after a few of them.
      await settled(() => server.probes[0]?.written ?? 0);
      const probe = server.probes[0];
      assert.ok(probe);
      assert.ok(probe.written < COUNT / 4, `the handler wrote ${probe.written} answers while nothing was read`);
      assert.equal(probe.maxInFlight, LIMIT, "the bound was reached and not passed");
      const body: Buffer[] = [];
      req.on("data", (b: Buffer) => body.push(b));
      const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => req.once("trailers", resolve));
      req.resume();
      await writing;
      assert.equal((await trailers)["grpc-status"], "0");
      assert.deepEqual(grpcMessages(Buffer.concat(body)), inOrder(COUNT));
      assert.equal(probe.maxInFlight, LIMIT);
    } finally {
      session.destroy();
      server.close();
    }
  });

  test("fallback: without grpc-js's HTTP/2 stream (an interceptor in front), plain writes and the same answers", async () => {
    assert.equal(http2StreamOf({} as grpc.ServerInterceptingCallInterface), undefined);
    assert.equal(http2StreamOf({ stream: { write() {} } } as unknown as grpc.ServerInterceptingCallInterface), undefined);
    const front: grpc.ServerInterceptor = (_method, call) => new grpc.ServerInterceptingCall(call);
    const server = await echoServer(128, [front]);
    try {
      const { answers, status } = await echoAll(server.port, 5000);
      assert.equal(status.code, grpc.status.OK, status.details);
      assert.deepEqual(answers, inOrder(5000));
      assert.deepEqual(server.stats, { corked: 0, plain: 1 });
      assert.equal(server.probes[0]?.maxInFlight, 1);
    } finally {
      server.close();
    }
  });

  test("a call cancelled mid-burst ends on the server; the next call on the connection is answered", async () => {
    const server = await echoServer(128);
    const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      const call = echoCall(client);
      const status = ended(call);
      let read = 0;
      const readSome = new Promise<void>((resolve) =>
        call.on("data", () => {
          if (++read === 10) resolve();
        }),
      );
      for (let i = 0; i < 20_000; i++) if (!call.write(message(i, 64))) break;
      await readSome;
      call.cancel();
      assert.equal((await status).code, grpc.status.CANCELLED);
      const probe = server.probes[0];
      await settled(() => (probe?.cancelled ? 1 : 0), 100);
      assert.ok(probe?.cancelled, "the server saw the cancellation");
      const next = echoCall(client);
      const answers: number[] = [];
      next.on("data", (b: Buffer) => answers.push(b.readUInt32BE(0)));
      const nextStatus = ended(next);
      for (let i = 0; i < 300; i++) next.write(message(i, 64));
      next.end();
      assert.equal((await nextStatus).code, grpc.status.OK);
      assert.deepEqual(answers, inOrder(300));
    } finally {
      client.close();
      server.close();
    }
  });
});
