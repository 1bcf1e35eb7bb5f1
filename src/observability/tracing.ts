import { type Attributes, type Context, context, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { Knex } from "knex";

/** Where spans go: nowhere (no span is made), an OTLP/HTTP collector, or the provider the process registered. */
export type TracingExporter = "none" | "otlp" | "global";

export interface TracingConfig {
  exporter: TracingExporter;
  /** The collector's traces endpoint (exporter "otlp"). */
  otlpEndpoint: string;
  serviceName: string;
  /** A longer statement is cut in db.statement (an IN list of many ids). */
  maxStatementChars: number;
}

const W3C = new W3CTraceContextPropagator();

type Headers = Record<string, string | string[] | undefined>;
const headerGetter = {
  keys: (carrier: Headers) => Object.keys(carrier),
  get: (carrier: Headers, key: string) => carrier[key],
};

/**
 * Spans around RPCs, HTTP requests and database queries, through the OpenTelemetry API. Off by
 * default: with exporter "none" no span, context or header is looked at. W3C `traceparent`
 * (and `tracestate`) of a request make its span a child of the caller's, and outgoing calls to
 * external key managers carry the current one.
 */
export class Tracing {
  readonly enabled: boolean;
  private readonly tracer: Tracer | undefined;
  private readonly provider: BasicTracerProvider | undefined;
  private readonly maxStatement: number;

  constructor(config: TracingConfig) {
    this.maxStatement = config.maxStatementChars;
    this.enabled = config.exporter !== "none";
    if (config.exporter === "otlp") {
      this.provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ "service.name": config.serviceName }),
        spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: config.otlpEndpoint }))],
      });
      // Child spans (database calls) find their parent through async context; outgoing calls
      // (external key managers) carry traceparent through the API's propagator.
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      propagation.setGlobalPropagator(W3C);
      this.tracer = this.provider.getTracer("keymanager");
    } else if (config.exporter === "global") {
      this.tracer = trace.getTracer("keymanager");
    }
  }

  /**
   * A server span for one request, child of the caller's `traceparent` when it sent one, and the
   * context to run the request in; undefined when tracing is off.
   */
  serverSpan(name: string, headers: Headers, attributes: Attributes): { span: Span; context: Context } | undefined {
    if (!this.tracer) return undefined;
    const parent = W3C.extract(ROOT_CONTEXT, headers, headerGetter);
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
    return { span, context: trace.setSpan(parent, span) };
  }

  /** Ends a server span with the call's outcome. */
  end(span: Span, ok: boolean, attributes: Attributes): void {
    span.setAttributes(attributes);
    if (!ok) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }

  /** A client span around each query of `db`, child of the request's span. */
  database(db: Knex, dialect: string): void {
    const tracer = this.tracer;
    if (!tracer) return;
    const system = dialect === "postgres" ? "postgresql" : dialect;
    const spans = new Map<string, Span>();
    db.on("query", (query: { __knexQueryUid?: string; method?: string; sql?: string }) => {
      if (!query.__knexQueryUid || trace.getSpan(context.active()) === undefined) return;
      const operation = query.method ?? "query";
      const span = tracer.startSpan(`${system} ${operation}`, {
        kind: SpanKind.CLIENT,
        attributes: { "db.system": system, "db.operation": operation, "db.statement": (query.sql ?? "").slice(0, this.maxStatement) },
      });
      spans.set(query.__knexQueryUid, span);
    });
    const end = (query: { __knexQueryUid?: string } | undefined, failed: boolean) => {
      const uid = query?.__knexQueryUid;
      const span = uid === undefined ? undefined : spans.get(uid);
      if (!span || uid === undefined) return;
      spans.delete(uid);
      if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    db.on("query-response", (_response: unknown, query: { __knexQueryUid?: string }) => end(query, false));
    db.on("query-error", (_err: unknown, query: { __knexQueryUid?: string }) => end(query, true));
  }

  /** Sends what is waiting (exporter "otlp"). */
  async close(): Promise<void> {
    await this.provider?.shutdown();
  }
}
