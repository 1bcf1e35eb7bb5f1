import type { Readable } from "node:stream";
import { create, type DescField, type DescMessage, type DescMethod, type DescService, fromBinary, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import type { ContextValues, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { CallAuthorizer } from "../auth/call-authorizer.js";
import { CALL_ORIGIN, type CallOrigin } from "../auth/call-origin.js";
import { PRINCIPAL, type Principal } from "../auth/principal.js";
import type { Metrics, RequestMeter } from "../observability/metrics.js";
import { type AccessLog, REQUEST_ID_HEADER } from "../observability/access-log.js";
import { context, type Context, type Span } from "@opentelemetry/api";
import type { Tracing } from "../observability/tracing.js";
import { type AuditLog, isChange } from "./audit-log.js";
import type { ClientAddresses } from "./client-address.js";
import { toConnectError } from "./error-mapping.js";
import { bidiStreamHandler, serverStreamHandler } from "./grpc-streams.js";

/**
 * Serves a protobuf-es service implementation on a grpc-js server: the same ServiceImpl that
 * connect-node serves on the HTTP port, with codecs from the generated schemas.
 */
export function grpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    if (method.methodKind === "client_streaming") throw new Error(`${method.name}: ${method.methodKind} methods are not served`);
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "bidi_streaming",
      responseStream: method.methodKind !== "unary",
      requestSerialize: serializer(method.input),
      // The handler decodes the request once the caller is authenticated (grpcHandlers).
      requestDeserialize: rawBytes,
      // A stream's answers wrap the service's kept answers: those go in as their bytes.
      responseSerialize: serializer(method.output, method.methodKind === "bidi_streaming"),
      responseDeserialize: deserializer(method.output),
      originalName: method.localName,
    };
  }
  return definition as grpc.ServiceDefinition;
}

/**
 * Each response object's bytes, shared by every method's serializer, kept while the object
 * lives: an answer a service serves again from its cache is not encoded again, alone (unary
 * ValidateToken) nor inside another message (a ValidateTokens answer around it).
 */
const ENCODED = new WeakMap<object, { schema: DescMessage; bytes: Buffer }>();

/** A singular message field or a oneof's message member: where an already encoded message may sit. */
interface Nested {
  field: DescField & { fieldKind: "message" };
  /** The oneof's property when the field is a member of one. */
  oneof: string | undefined;
}

/**
 * Encodes a response. Its message-typed fields (a oneof's members included) go in as the bytes
 * their value already has (ENCODED), or that it gets then; the rest of the message is encoded
 * around them (a field's encoding may come in any order: protobuf parsers merge them). Messages
 * that carry such a field are the envelopes of stream answers, new each time: not kept. Only for
 * `envelopes` (bidi streams' answers, ValidateTokens'), whose services never change an answer
 * once handed out.
 */
function serializer(schema: DescMessage, envelopes = false) {
  const nested: Nested[] = envelopes
    ? schema.fields
        .filter((f): f is DescField & { fieldKind: "message" } => f.fieldKind === "message")
        .map((field) => ({ field, oneof: field.oneof?.localName }))
    : [];
  return (message: unknown) => {
    const known = ENCODED.get(message as object);
    if (known && known.schema === schema) return known.bytes;
    if (nested.length > 0) {
      const inside = withEncodedParts(schema, message as Record<string, unknown>, nested);
      if (inside) return inside;
    }
    const bytes = Buffer.from(toBinary(schema, create(schema, message as never)));
    ENCODED.set(message as object, { schema, bytes });
    return bytes;
  };
}

/** The message's bytes with its set message fields put in as bytes, or undefined when it has none set. */
function withEncodedParts(schema: DescMessage, message: Record<string, unknown>, nested: Nested[]): Buffer | undefined {
  let rest: Record<string, unknown> | undefined;
  const parts: Array<[number, Buffer]> = [];
  for (const { field, oneof } of nested) {
    let value: unknown;
    if (oneof) {
      const selected = message[oneof] as { case?: string; value?: unknown } | undefined;
      if (selected?.case !== field.localName) continue;
      value = selected.value;
    } else value = message[field.localName];
    if (value === undefined || value === null) continue;
    parts.push([field.number, encoded(field.message, value as object)]);
    rest ??= { ...message };
    rest[oneof ?? field.localName] = undefined;
  }
  if (!rest) return undefined;
  const head = toBinary(schema, create(schema, rest as never));
  let size = head.length;
  for (const [number, bytes] of parts) size += varintSize((number << 3) | WireType.LengthDelimited) + varintSize(bytes.length) + bytes.length;
  const out = Buffer.allocUnsafe(size);
  out.set(head, 0);
  let at = head.length;
  for (const [number, bytes] of parts) {
    at = writeVarint(out, at, (number << 3) | WireType.LengthDelimited);
    at = writeVarint(out, at, bytes.length);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}

/** Bytes of a non-negative 32-bit varint (a field's tag, a length). */
function varintSize(value: number): number {
  let size = 1;
  for (let v = value >>> 7; v > 0; v >>>= 7) size++;
  return size;
}

function writeVarint(out: Buffer, at: number, value: number): number {
  let v = value >>> 0;
  while (v > 0x7f) {
    out[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[at++] = v;
  return at;
}

function encoded(schema: DescMessage, message: object): Buffer {
  const known = ENCODED.get(message);
  if (known && known.schema === schema) return known.bytes;
  const bytes = Buffer.from(toBinary(schema, create(schema, message as never)));
  ENCODED.set(message, { schema, bytes });
  return bytes;
}

function deserializer(schema: DescMessage) {
  return (bytes: Buffer) => fromBinary(schema, bytes);
}

function rawBytes(bytes: Buffer): Buffer {
  return bytes;
}

/**
 * The request, or INVALID_ARGUMENT when its bytes are not a valid encoding of the method's input
 * (random bytes, a truncated field, invalid UTF-8 in a string): the caller's mistake, not the
 * server's (grpc-js would answer INTERNAL for a throwing deserializer).
 */
function decodeRequest(schema: DescMessage, bytes: Buffer): unknown {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    throw new ConnectError(`cannot decode message ${schema.typeName} from binary: ${err instanceof Error ? err.message : String(err)}`, Code.InvalidArgument);
  }
}

/** The messages of a request stream, each decoded as it is read; a message that does not decode ends the call (INVALID_ARGUMENT). */
async function* decodedMessages(schema: DescMessage, call: Readable): AsyncGenerator<unknown> {
  // Not destroyed when its reading ends: the call is still to be answered.
  for await (const bytes of call.iterator({ destroyOnReturn: false })) yield decodeRequest(schema, bytes as Buffer);
}

export interface GrpcHandlerOptions {
  logger: Logger;
  /** Authenticates each call and checks its scope; the principal goes into the context. */
  authorizer: CallAuthorizer;
  /** Whether callers may authenticate with a client certificate (mTLS configured). */
  clientCertificates: boolean;
  /** Called after each successful call that changes something. */
  audit: AuditLog;
  /** Who a call comes from, network-wise (asked only by calls that check a secret). */
  addresses: ClientAddresses;
  /** Requests by method and code, with their durations. */
  metrics?: Metrics;
  /** One line per call. */
  access?: AccessLog;
  /** A span per call, child of the caller's traceparent. */
  tracing?: Tracing;
}

/** gRPC status names by code, the `code` label. */
export const GRPC_CODE_NAMES: readonly string[] = Array.from({ length: 17 }, (_, code) => grpc.status[code] ?? String(code));

const NO_METER: RequestMeter = { start: () => 0, done: () => undefined };

/** What a call's end needs besides its start time, made only when access lines are written or spans made. */
interface CallRecord {
  /** Set when an access line is written. */
  requestId: string | undefined;
  caller: string | undefined;
  trace: { span: Span; context: Context } | undefined;
}

/**
 * The start and end of each call of one method: its metrics, and its access line with a request
 * id (the caller's x-request-id, or a new one, sent back in the response metadata).
 */
class CallObserver {
  private readonly meter: RequestMeter;

  constructor(
    private readonly procedure: string,
    private readonly options: GrpcHandlerOptions,
    service: DescService,
    method: DescMethod,
  ) {
    this.meter = options.metrics?.requests("grpc", service.typeName, method.name) ?? NO_METER;
    this.service = service.typeName;
    this.method = method.name;
  }

  private readonly service: string;
  private readonly method: string;

  start(): number {
    return performance.now();
  }

  /** The call's record, or undefined when neither an access line is written nor a span made. */
  begin(call: grpc.ServerUnaryCall<unknown, unknown>): CallRecord | undefined {
    const logged = this.options.access?.enabled === true;
    const traced = this.options.tracing?.enabled === true;
    if (!logged && !traced) return undefined;
    let requestId: string | undefined;
    if (logged) {
      requestId = this.options.access?.requestId(call.metadata.get(REQUEST_ID_HEADER)[0]) ?? "";
      const metadata = new grpc.Metadata();
      metadata.set(REQUEST_ID_HEADER, requestId);
      call.sendMetadata(metadata);
    }
    const trace = traced
      ? this.options.tracing?.serverSpan(
          this.procedure,
          { traceparent: metadataText(call.metadata, "traceparent"), tracestate: metadataText(call.metadata, "tracestate") },
          { "rpc.system": "grpc", "rpc.service": this.service, "rpc.method": this.method },
        )
      : undefined;
    return { requestId, caller: undefined, trace };
  }

  end(started: number, record: CallRecord | undefined, code: number): void {
    const name = GRPC_CODE_NAMES[code] ?? "UNKNOWN";
    this.meter.done(started, name);
    if (!record) return;
    if (record.requestId !== undefined) {
      this.options.access?.write({
        port: "grpc",
        call: this.procedure,
        code: name,
        ms: performance.now() - started,
        caller: record.caller,
        requestId: record.requestId,
      });
    }
    if (record.trace) this.options.tracing?.end(record.trace.span, code === grpc.status.OK, { "rpc.grpc.status_code": code });
  }
}

/** grpc-js handlers calling `impl`, errors mapped by the shared error mapping. */
export function grpcHandlers<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>, options: GrpcHandlerOptions): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const fn = (impl as Record<string, unknown>)[method.localName] as ((req: unknown, ctx: HandlerContext) => Promise<unknown> | unknown) | undefined;
    const procedure = `/${service.typeName}/${method.name}`;
    const observer = new CallObserver(procedure.slice(1), options, service, method);
    const fail = (err: unknown, callback: grpc.sendUnaryData<unknown>, started: number, record: CallRecord | undefined) => {
      const status = grpcError(err, options.logger, procedure);
      observer.end(started, record, status.code ?? grpc.status.UNKNOWN);
      callback(status);
    };
    const authorize = options.authorizer.forMethod(service, method);
    const changes = isChange(method);
    if (method.methodKind === "bidi_streaming") {
      handlers[method.localName] = bidiStreamHandler({
        method,
        authorize,
        clientCertificates: options.clientCertificates,
        fail: (call, err) => call.emit("error", grpcError(err, options.logger, procedure)),
        open: (call, principal) => {
          if (!fn) throw new ConnectError(`${procedure} is not implemented`, Code.Unimplemented);
          const ctx = new GrpcHandlerContext(service, method, call, options.addresses);
          ctx.values.set(PRINCIPAL, principal).set(CALL_ORIGIN, ctx);
          return fn.call(impl, decodedMessages(method.input, call), ctx) as AsyncIterable<unknown>;
        },
      });
      continue;
    }
    if (method.methodKind === "server_streaming") {
      handlers[method.localName] = serverStreamHandler({
        authorize,
        clientCertificates: options.clientCertificates,
        fail: (call, err) => call.emit("error", grpcError(err, options.logger, procedure)),
        open: (call, principal) => {
          if (!fn) throw new ConnectError(`${procedure} is not implemented`, Code.Unimplemented);
          const ctx = new GrpcHandlerContext(service, method, call, options.addresses);
          ctx.values.set(PRINCIPAL, principal).set(CALL_ORIGIN, ctx);
          return fn.call(impl, decodeRequest(method.input, call.request as Buffer), ctx) as AsyncIterable<unknown>;
        },
      });
      continue;
    }
    const answered = (
      response: unknown,
      callback: grpc.sendUnaryData<unknown>,
      principal: Principal,
      request: unknown,
      started: number,
      record: CallRecord | undefined,
    ) => {
      if (changes) options.audit.record(principal, method, request);
      observer.end(started, record, grpc.status.OK);
      callback(null, response);
    };
    // Runs once the caller is authenticated: only then is the request decoded and looked at, so
    // an unauthenticated caller costs no decoding, validation or error description.
    const run = (
      call: grpc.ServerUnaryCall<unknown, unknown>,
      callback: grpc.sendUnaryData<unknown>,
      principal: Principal,
      started: number,
      record: CallRecord | undefined,
    ) => {
      if (record) record.caller = principal.clientId;
      if (!fn) {
        observer.end(started, record, grpc.status.UNIMPLEMENTED);
        callback({ code: grpc.status.UNIMPLEMENTED, details: `${procedure} is not implemented` });
        return;
      }
      // The context's values (principal, call origin) are made only if the handler reads them:
      // ValidateToken does not, and it is most calls.
      const ctx = new GrpcHandlerContext(service, method, call, options.addresses, principal);
      let request: unknown;
      let response: unknown;
      try {
        request = decodeRequest(method.input, call.request as Buffer);
        response = fn.call(impl, request, ctx);
      } catch (err) {
        fail(err, callback, started, record);
        return;
      }
      // A handler that answers at once (the gateway check from its cache) is answered at once,
      // without closures or microtask hops.
      if (!isThenable(response)) answered(response, callback, principal, request, started, record);
      else
        response.then(
          (r) => answered(r, callback, principal, request, started, record),
          (err: unknown) => fail(err, callback, started, record),
        );
    };
    const serve = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>, started: number, record: CallRecord | undefined) => {
      let principal: Principal | Promise<Principal>;
      try {
        principal = authorize({
          authorization: call.metadata.get("authorization")[0] as string | undefined,
          certificate: options.clientCertificates ? () => call.getAuthContext().sslPeerCertificate : undefined,
        });
      } catch (err) {
        fail(err, callback, started, record);
        return;
      }
      if (principal instanceof Promise)
        principal.then(
          (p) => run(call, callback, p, started, record),
          (err: unknown) => fail(err, callback, started, record),
        );
      else run(call, callback, principal, started, record);
    };
    handlers[method.localName] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const started = observer.start();
      const record = observer.begin(call);
      // Traced: the call runs in its span's context, so its database queries are its children.
      if (record?.trace) context.with(record.trace.context, serve, undefined, call, callback, started, record);
      else serve(call, callback, started, record);
    };
  }
  return handlers;
}

/**
 * A HandlerContext over a grpc-js call. Headers are built only when a handler reads them,
 * keeping the per-call cost of the gateway's hot path low.
 */
class GrpcHandlerContext implements HandlerContext, CallOrigin {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  private headers: Headers | undefined;
  private abort: AbortController | undefined;
  private contextValues: ContextValues | undefined;
  private headersOut: Headers | undefined;
  private trailersOut: Headers | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    private readonly call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
    private readonly addresses: ClientAddresses,
    /** Put in the values (with the call origin) when they are first read. */
    private readonly principal?: Principal,
  ) {}

  address(): string {
    const forwarded = this.call.metadata.get(this.addresses.header)[0];
    return this.addresses.resolve(this.call.getPeer(), typeof forwarded === "string" ? forwarded : undefined);
  }

  get url(): string {
    return `/${this.service.typeName}/${this.method.name}`;
  }

  get signal(): AbortSignal {
    if (!this.abort) {
      const controller = new AbortController();
      this.abort = controller;
      if (this.call.cancelled) controller.abort();
      else (this.call as grpc.ServerUnaryCall<unknown, unknown>).once("cancelled", () => controller.abort());
    }
    return this.abort.signal;
  }

  timeoutMs(): number | undefined {
    const deadline = this.call.getDeadline();
    if (deadline === Number.POSITIVE_INFINITY) return undefined;
    const at = deadline instanceof Date ? deadline.getTime() : deadline;
    return Math.max(0, at - Date.now());
  }

  // Not sent on the gRPC port: services set no response metadata. Made only when asked for.
  get responseHeader(): Headers {
    this.headersOut ??= new Headers();
    return this.headersOut;
  }

  get responseTrailer(): Headers {
    this.trailersOut ??= new Headers();
    return this.trailersOut;
  }

  get requestHeader(): Headers {
    if (!this.headers) this.headers = metadataToHeaders(this.call.metadata);
    return this.headers;
  }

  get values(): ContextValues {
    if (!this.contextValues) {
      this.contextValues = createContextValues();
      if (this.principal) this.contextValues.set(PRINCIPAL, this.principal).set(CALL_ORIGIN, this);
    }
    return this.contextValues;
  }
}

/**
 * The status of a failed call, with the error's metadata (x-invalid-fields) as trailers. Should
 * building it fail, the call is still answered, INTERNAL.
 */
function grpcError(err: unknown, logger: Logger, procedure: string): Partial<grpc.StatusObject> {
  try {
    const ce = toConnectError(err, logger, procedure);
    const metadata = new grpc.Metadata();
    ce.metadata.forEach((value, key) => {
      metadata.set(key, value);
    });
    return { code: ce.code as number, details: ce.rawMessage, metadata };
  } catch {
    return { code: grpc.status.INTERNAL, details: "internal error" };
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === "function";
}

function metadataText(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

function metadataToHeaders(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, values] of Object.entries(metadata.getMap())) {
    if (key.endsWith("-bin")) continue;
    headers.append(key, String(values));
  }
  return headers;
}
