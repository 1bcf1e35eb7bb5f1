import type { Http2Stream } from "node:http2";
import * as grpc from "@grpc/grpc-js";

type Call = grpc.ServerInterceptingCallInterface;

/** What the write-ahead interceptor did with the bidi calls it saw (tests and the start-up log read it). */
export interface WriteAheadStats {
  /** Bidi calls written ahead, corked on their HTTP/2 stream. */
  corked: number;
  /** Bidi calls left to grpc-js's plain writes because its HTTP/2 stream was not found. */
  plain: number;
}

/**
 * A grpc-js server interceptor for bidi streams (ValidateTokens). grpc-js writes a stream's
 * answers one at a time: the call's Writable hands it the next answer only when the previous
 * one's HTTP/2 write has called back, so each answer pays a write of its own (a DATA frame, a
 * syscall). Here each answer's callback is given back at once while fewer than `limit` answers
 * are in flight on the HTTP/2 stream (past it, when one completes), so the handler writes up to
 * `limit` ahead; and the HTTP/2 stream is corked while a burst is written, uncorked once the
 * event loop's turn is done (setImmediate: grpc-js hands the handler one request per read, a
 * tick apart, so uncorking on the next tick wrote one answer per write), so the answers of one
 * turn's reads leave as one writev: few DATA frames, one syscall.
 *
 * Backpressure stays: at most `limit` answers wait in the HTTP/2 stream (flow control holds
 * them while the peer does not read), then the call's Writable fills and `write()` returns
 * false as before. The HTTP/2 stream is a private field of grpc-js's innermost call (`stream`);
 * when it is not there (another grpc-js, or an interceptor in front of this one), the call is
 * left as it is: plain writes, slower, the same answers.
 *
 * `limit` 0 or 1: off (every call left as it is, nothing counted). `onPlain` is told of each
 * call left to plain writes although write-ahead is on.
 */
export function writeAheadInterceptor(limit: number, stats: WriteAheadStats = { corked: 0, plain: 0 }, onPlain: () => void = () => {}): grpc.ServerInterceptor {
  return (method, call) => {
    if (limit <= 1 || !method.requestStream || !method.responseStream) return call as grpc.ServerInterceptingCall;
    const stream = http2StreamOf(call);
    if (!stream) {
      stats.plain++;
      onPlain();
      return call as grpc.ServerInterceptingCall;
    }
    stats.corked++;
    return new grpc.ServerInterceptingCall(new WriteAheadCall(call, stream, limit));
  };
}

/** The HTTP/2 stream of grpc-js's innermost call (BaseServerInterceptingCall's private `stream`), if it is one. */
export function http2StreamOf(call: grpc.ServerInterceptingCallInterface): Http2Stream | undefined {
  const stream = (call as unknown as { stream?: unknown }).stream;
  if (typeof stream !== "object" || stream === null) return undefined;
  const s = stream as Partial<Http2Stream>;
  return typeof s.cork === "function" && typeof s.uncork === "function" && typeof s.write === "function" ? (stream as Http2Stream) : undefined;
}

/** The innermost call with its answers written ahead and corked in bursts; everything else passed through. */
class WriteAheadCall implements grpc.ServerInterceptingCallInterface {
  /** Answers handed to the HTTP/2 stream whose write has not called back. */
  private inFlight = 0;
  /** Callbacks of answers written past the limit: given back, in order, as writes complete. */
  private readonly held: Array<() => void> = [];
  private corked = false;
  private ended = false;
  private readonly uncork = () => {
    this.corked = false;
    this.stream.uncork();
  };

  constructor(
    private readonly next: grpc.ServerInterceptingCallInterface,
    private readonly stream: Http2Stream,
    private readonly limit: number,
  ) {}

  sendMessage(message: unknown, callback: () => void): void {
    if (this.ended) return;
    if (!this.corked && !this.stream.destroyed) {
      this.corked = true;
      this.stream.cork();
      setImmediate(this.uncork);
    }
    this.inFlight++;
    // grpc-js calls back only once the write succeeded; a failed write ends the call with INTERNAL.
    this.next.sendMessage(message, () => this.written());
    if (this.inFlight < this.limit) callback();
    else this.held.push(callback);
  }

  sendStatus(status: Parameters<Call["sendStatus"]>[0]): void {
    this.ended = true;
    // The status goes after the answers already queued (the HTTP/2 stream keeps their order).
    this.next.sendStatus(status);
  }

  private written(): void {
    this.inFlight--;
    this.held.shift()?.();
  }

  start(listener: Parameters<Call["start"]>[0]): void {
    this.next.start(listener);
  }
  sendMetadata(metadata: grpc.Metadata): void {
    this.next.sendMetadata(metadata);
  }
  startRead(): void {
    this.next.startRead();
  }
  getPeer(): string {
    return this.next.getPeer();
  }
  getDeadline(): grpc.Deadline {
    return this.next.getDeadline();
  }
  getHost(): string {
    return this.next.getHost();
  }
  getAuthContext(): ReturnType<Call["getAuthContext"]> {
    return this.next.getAuthContext();
  }
  getConnectionInfo(): ReturnType<Call["getConnectionInfo"]> {
    return this.next.getConnectionInfo();
  }
  getMetricsRecorder(): ReturnType<Call["getMetricsRecorder"]> {
    return this.next.getMetricsRecorder();
  }
}
