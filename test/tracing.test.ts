import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { startServer, type TestServer } from "./support/server.js";

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

describe("tracing through the OpenTelemetry API", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  let server: TestServer;

  before(async () => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(contextManager.enable());
    server = await startServer({ overrides: { tracing: { exporter: "global" } } });
  });
  after(async () => {
    await server?.close();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);

  test("gRPC: a call with a traceparent gets a server span in that trace, with a database span as its child", async () => {
    const traceId = hex(16);
    const parentId = hex(8);
    await server
      .client(SubscriptionService)
      .createApi(
        { api: { apiId: "traced", name: "Traced", context: "/traced", version: "1", publisher: "admin" } },
        { headers: { traceparent: `00-${traceId}-${parentId}-01` } },
      );
    const spans = spansOf(traceId);
    const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER);
    assert.ok(serverSpan, "a server span in the caller's trace");
    assert.equal(serverSpan.name, "keymanager.v1.SubscriptionService/CreateApi");
    assert.equal(serverSpan.parentSpanContext?.spanId, parentId, "the caller's span is its parent");
    assert.equal(serverSpan.attributes["rpc.grpc.status_code"], 0);
    const db = spans.filter((s) => s.kind === SpanKind.CLIENT && s.parentSpanContext?.spanId === serverSpan.spanContext().spanId);
    assert.ok(db.length >= 1, "database spans are children of the server span");
    assert.equal(db[0]?.attributes["db.system"], "sqlite");
    assert.ok(db.some((s) => s.attributes["db.operation"] === "insert"));
    assert.ok(
      db.every((s) => !String(s.attributes["db.statement"]).includes("Traced")),
      "statements without their values",
    );
  });

  test("HTTP port: a Connect call with a traceparent header is traced the same way; a call without one starts a trace", async () => {
    const traceId = hex(16);
    const parentId = hex(8);
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/keymanager.v1.TokenValidationService/ValidateToken`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${server.token}`, traceparent: `00-${traceId}-${parentId}-01` },
      body: JSON.stringify({ context: "/traced", version: "1", accessToken: hex(20), matchingResource: "/x", httpVerb: "GET" }),
    });
    assert.equal(res.status, 200);
    await res.text();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const serverSpan = spansOf(traceId).find((s) => s.kind === SpanKind.SERVER);
    assert.equal(serverSpan?.name, "keymanager.v1.TokenValidationService/ValidateToken");
    assert.equal(serverSpan?.parentSpanContext?.spanId, parentId);
    assert.ok(
      spansOf(traceId).some((s) => s.kind === SpanKind.CLIENT),
      "the token's look-up is a database span of the call",
    );

    const before = exporter.getFinishedSpans().length;
    await server.client(TokenValidationService).validateToken({ context: "/traced", version: "1", matchingResource: "/x", httpVerb: "GET" });
    const fresh = exporter
      .getFinishedSpans()
      .slice(before)
      .find((s) => s.kind === SpanKind.SERVER);
    assert.ok(fresh, "a span without a traceparent");
    assert.equal(fresh.parentSpanContext, undefined, "the root of a new trace");
  });
});

describe("tracing off (the default)", () => {
  test("no span is made even with a provider registered", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(provider);
    const server = await startServer();
    try {
      await server
        .client(SubscriptionService)
        .createApi(
          { api: { apiId: "untraced", name: "Untraced", context: "/untraced", version: "1", publisher: "admin" } },
          { headers: { traceparent: `00-${hex(16)}-${hex(8)}-01` } },
        );
      assert.equal(exporter.getFinishedSpans().length, 0);
    } finally {
      await server.close();
      await provider.shutdown();
      trace.disable();
    }
  });
});

describe("tracing: exporter otlp", () => {
  test("spans reach an OTLP/HTTP collector, the caller's trace id in them", async () => {
    const received: Buffer[] = [];
    const collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.method === "POST" && req.url === "/v1/traces") received.push(Buffer.concat(chunks));
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
    const { port } = collector.address() as AddressInfo;
    const server = await startServer({ overrides: { tracing: { exporter: "otlp", otlp_endpoint: `http://127.0.0.1:${port}/v1/traces` } } });
    const traceId = hex(16);
    try {
      await server
        .client(TokenValidationService)
        .validateToken({ context: "/otlp", version: "1", matchingResource: "/x", httpVerb: "GET" }, { headers: { traceparent: `00-${traceId}-${hex(8)}-01` } });
    } finally {
      // Closing the app sends what is waiting.
      await server.close();
      collector.close();
      trace.disable();
      context.disable();
      propagation.disable();
    }
    assert.ok(received.length >= 1, "the collector was called");
    assert.ok(
      // OTLP/HTTP JSON carries ids as hex, protobuf as bytes.
      received.some((body) => body.includes(traceId) || body.includes(Buffer.from(traceId, "hex"))),
      "the caller's trace id is in the exported spans",
    );
  });
});
