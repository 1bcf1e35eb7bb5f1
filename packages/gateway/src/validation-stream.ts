import { setTimeout as sleep } from "node:timers/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { TokenValidationService, ValidateTokenRequestSchema, ValidateTokenResponse, ValidateTokensRequestSchema } from "@keymanager/client";
import { Outbox } from "./outbox.js";

type Check = MessageInitShape<typeof ValidateTokenRequestSchema>;
type Outgoing = MessageInitShape<typeof ValidateTokensRequestSchema>;

export interface ValidationStreamOptions {
  /** Checks waiting for an answer at most; past that a check fails at once (Code.ResourceExhausted). */
  maxPending: number;
  /** How long a check waits for its answer, across reconnections (Code.DeadlineExceeded). */
  callTimeoutMs: number;
  /** First wait before opening a new stream after one failed; doubled up to maxDelayMs. */
  reconnectInitialDelayMs: number;
  reconnectMaxDelayMs: number;
  /** Told when a stream fails or the server ends it (for the owner's log): the error, or undefined. */
  onStreamEnd?: (err: ConnectError | undefined) => void;
  /** Told before a new stream is opened after an UNAUTHENTICATED one (a token source forgets its token). */
  onUnauthenticated?: () => void;
}

interface Pending {
  check: Check;
  resolve: (answer: ValidateTokenResponse) => void;
  reject: (err: ConnectError) => void;
  timer: NodeJS.Timeout;
}

/** Errors no new stream can cure: the checks waiting fail with them instead of waiting for their deadline. */
const FATAL = new Set([Code.Unauthenticated, Code.PermissionDenied, Code.Unimplemented, Code.InvalidArgument]);

/**
 * ValidateToken checks pipelined over ONE ValidateTokens bidi stream, opened at the first check
 * and opened again (with backoff) whenever it fails or the server ends it. Checks still waiting
 * when a stream breaks are sent again on the next one (ValidateToken has no side effects); each
 * waits at most callTimeoutMs in all. A check the server could not work on (its per-request
 * error) fails with that error's code and message.
 */
export class ValidationStream {
  private readonly pending = new Map<bigint, Pending>();
  private nextId = 1n;
  private outbox: Outbox<Outgoing> | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private closed = false;

  constructor(
    private readonly client: Client<typeof TokenValidationService>,
    private readonly options: ValidationStreamOptions,
  ) {}

  /** Checks waiting for their answer. */
  get waiting(): number {
    return this.pending.size;
  }

  check(check: Check): Promise<ValidateTokenResponse> {
    if (this.closed) return Promise.reject(new ConnectError("the gateway validator is closed", Code.Canceled));
    if (this.pending.size >= this.options.maxPending) {
      return Promise.reject(new ConnectError(`${this.options.maxPending} checks already wait for the key manager (maxPending)`, Code.ResourceExhausted));
    }
    const requestId = this.nextId++;
    return new Promise<ValidateTokenResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new ConnectError(`no answer from the key manager within ${this.options.callTimeoutMs} ms`, Code.DeadlineExceeded));
      }, this.options.callTimeoutMs);
      timer.unref();
      this.pending.set(requestId, { check, resolve, reject, timer });
      this.outbox?.push({ requestId, request: check });
      this.running ??= this.run();
    });
  }

  /** Ends the stream; checks still waiting fail with Code.Canceled. */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    this.outbox?.end();
    this.failAll(new ConnectError("the gateway validator is closed", Code.Canceled));
    await this.running;
  }

  private async run(): Promise<void> {
    let delay = this.options.reconnectInitialDelayMs;
    while (!this.closed) {
      const outbox = new Outbox<Outgoing>();
      for (const [requestId, p] of this.pending) outbox.push({ requestId, request: p.check });
      this.outbox = outbox;
      let failure: ConnectError | undefined;
      try {
        for await (const message of this.client.validateTokens(outbox, { signal: this.abort.signal })) {
          delay = this.options.reconnectInitialDelayMs;
          this.settle(message.requestId, message.result);
        }
      } catch (err) {
        failure = ConnectError.from(err);
      }
      outbox.end();
      this.outbox = undefined;
      if (this.closed) return;
      this.options.onStreamEnd?.(failure);
      if (failure && FATAL.has(failure.code)) {
        this.failAll(failure);
        if (failure.code === Code.Unauthenticated) this.options.onUnauthenticated?.();
      }
      // Nothing waiting: the next check opens the stream again.
      if (this.pending.size === 0) {
        this.running = undefined;
        return;
      }
      try {
        await sleep(delay, undefined, { signal: this.abort.signal });
      } catch {
        return;
      }
      delay = Math.min(delay * 2, this.options.reconnectMaxDelayMs);
    }
  }

  private settle(
    requestId: bigint,
    result:
      | { case: "response"; value: ValidateTokenResponse }
      | { case: "error"; value: { code: number; message: string } }
      | { case: undefined; value?: undefined },
  ): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    if (result.case === "response") p.resolve(result.value);
    else if (result.case === "error") p.reject(new ConnectError(result.value.message, result.value.code as Code));
    else p.reject(new ConnectError("the key manager answered without a result", Code.Internal));
  }

  private failAll(err: ConnectError): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}
