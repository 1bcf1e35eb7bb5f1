import { context, propagation } from "@opentelemetry/api";
import { UnavailableError } from "../../domain/errors.js";

export interface HttpResponse {
  status: number;
  /** The parsed JSON body; undefined when empty or not JSON. */
  body: unknown;
}

export interface HttpCall {
  method: "GET" | "POST" | "PUT" | "DELETE";
  url: string;
  headers?: Record<string, string>;
  /** A JSON body (registration) or form fields (token, introspection, revocation). */
  json?: unknown;
  form?: Record<string, string>;
  /** Safe to send twice: retried once after a network failure, timeout or 5xx. */
  idempotent: boolean;
}

/**
 * HTTP to one external key manager. Every call ends within the configured timeout; a server that
 * cannot be reached, is too slow or answers 5xx is UnavailableError naming the key manager, so
 * the caller sees UNAVAILABLE (or ValidateToken's 900912). Other answers go back to the caller.
 */
export class OAuth2HttpClient {
  private readonly breaker: CircuitBreaker;

  constructor(
    private readonly keyManager: string,
    private readonly timeoutMs: number,
    private readonly fetchImpl: typeof fetch = fetch,
    now: () => number = Date.now,
  ) {
    this.breaker = new CircuitBreaker(now);
  }

  async send(call: HttpCall): Promise<HttpResponse> {
    const refusal = this.breaker.refusal();
    if (refusal !== undefined) throw new UnavailableError(`key manager "${this.keyManager}" is not available: ${refusal}`);
    const attempts = call.idempotent ? 2 : 1;
    let problem = "";
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const response = await this.fetchImpl(call.url, { ...requestInit(call), signal: AbortSignal.timeout(this.timeoutMs) });
        const body = await readJson(response);
        if (response.status < 500) {
          this.breaker.succeeded();
          return { status: response.status, body };
        }
        problem = `HTTP ${response.status}`;
      } catch (err) {
        problem = describe(err, this.timeoutMs);
      }
    }
    this.breaker.failed();
    throw new UnavailableError(`key manager "${this.keyManager}" is not available: ${problem}`);
  }
}

/** Calls in a row that find the server unavailable before calls stop being sent for a while. */
export const BREAKER_FAILURES = 5;
/** How long calls fail at once before one call tries the server again. */
export const BREAKER_PAUSE_MS = 5_000;

/**
 * A server that is down costs each call its whole timeout (twice for retried calls), and the
 * gateway waits that long for every ValidateToken that misses the cache. After BREAKER_FAILURES
 * unavailable answers in a row, calls fail at once for BREAKER_PAUSE_MS; then a single call
 * tries the server (the others still fail at once) and its outcome closes or reopens the circuit.
 */
class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private probing = false;

  constructor(private readonly now: () => number) {}

  /** Why this call is not sent, or undefined to send it. */
  refusal(): string | undefined {
    if (this.failures < BREAKER_FAILURES) return undefined;
    const wait = this.openUntil - this.now();
    if (wait > 0) return `${this.failures} calls in a row failed; the next try in ${Math.ceil(wait / 1000)} s`;
    if (this.probing) return `${this.failures} calls in a row failed; a call is trying it again`;
    this.probing = true;
    return undefined;
  }

  succeeded(): void {
    this.failures = 0;
    this.probing = false;
  }

  failed(): void {
    this.failures++;
    this.probing = false;
    if (this.failures >= BREAKER_FAILURES) this.openUntil = this.now() + BREAKER_PAUSE_MS;
  }
}

function requestInit(call: HttpCall): RequestInit {
  const headers: Record<string, string> = { accept: "application/json", ...call.headers };
  // The current trace's traceparent, when tracing registered a propagator (a no-op otherwise).
  propagation.inject(context.active(), headers);
  if (call.json !== undefined) {
    headers["content-type"] = "application/json";
    return { method: call.method, headers, body: JSON.stringify(call.json) };
  }
  if (call.form !== undefined) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    return { method: call.method, headers, body: new URLSearchParams(call.form).toString() };
  }
  return { method: call.method, headers };
}

/** No answer of an OAuth2 server needs more; a larger one is read no further. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

async function readJson(response: Response): Promise<unknown> {
  const text = await readText(response, MAX_RESPONSE_BYTES);
  if (text === undefined || text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The body as text, or undefined (and the rest discarded) when it exceeds maxBytes. */
async function readText(response: Response, maxBytes: number): Promise<string | undefined> {
  if (!response.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    // Leaving the loop cancels the rest of the stream.
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

/** Why a call failed, without anything the server sent (it may echo a secret). */
function describe(err: unknown, timeoutMs: number): string {
  const name = (err as { name?: string }).name;
  if (name === "TimeoutError" || name === "AbortError") return `no answer within ${timeoutMs} ms`;
  const code = (err as { cause?: { code?: string } }).cause?.code;
  return code ? `connection failed (${code})` : "connection failed";
}

/** RFC 6749 section 2.3.1: client_id and secret form-encoded, then Basic. */
export function basicAuth(clientId: string, clientSecret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString("base64")}`;
}

/** The fields of a JSON object body; empty for anything else. */
export function fields(body: unknown): Record<string, unknown> {
  return typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
}

export function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

export function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}
