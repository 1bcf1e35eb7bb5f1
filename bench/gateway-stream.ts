// The gateways' Watch stream (npm run bench -- --only gateway-stream): commit-to-watcher latency
// (across two replicas on PostgreSQL), ValidateToken throughput with 100 watchers connected
// against none, server memory per watcher, and the snapshot of 100,000 subscriptions.
import { randomUUID } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Knex } from "knex";
import { GatewaySyncService, type WatchResponse, WatchResponseSchema } from "../gen/keymanager/v1/gateway_sync_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";

/** What the phase needs of the benchmark's run (bench/run.ts). */
export interface StreamBenchContext<O extends { rps: number; cpuUs: number }> {
  /** The seeded server: writes go through it. */
  writer: { grpcPort: number; adminToken: string; gatewayToken: string; pid: number };
  /**
   * Where watchers connect for the latency, and the memory per watcher is measured: another
   * replica on PostgreSQL (idle but for them), the same server on SQLite.
   */
  watched: { grpcPort: number; gatewayToken: string; pid: number };
  /** A subscription of the seeded API whose tier the writes change. */
  subscriptionId: string;
  /** The seeded API (100,000 subscriptions are added to it directly). */
  apiId: string;
  db: Knex;
  rounds: number;
  /** One round of the ValidateToken mix against the writer, its figures. */
  drive: () => Promise<O>;
  rssKiB: (pid: number) => number;
}

export interface StreamBenchResult<O> {
  latency: { p50: number; p99: number; count: number };
  /** The write call's start to the commit stamp, the stamp to the call's answer, the call's start to the event's arrival. */
  breakdown: Record<"callToStamp" | "stampToAnswer" | "callToArrival", { p50: number; p99: number }>;
  without: O[];
  with: O[];
  ratio: number;
  memoryPerWatcherKiB: number;
  watchersForMemory: number;
  snapshot: { ms: number; bytes: number; chunks: number; entities: number };
}

function client<S extends typeof GatewaySyncService | typeof SubscriptionService>(service: S, port: number, token: string): Client<S> {
  const transport = createGrpcTransport({
    baseUrl: `http://127.0.0.1:${port}`,
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      },
    ],
  });
  return createClient(service, transport);
}

/** A watcher read in the background: resolves `ready` at its snapshot's last chunk, calls `onEvent` with each event. */
function watch(sync: Client<typeof GatewaySyncService>, onMessage?: (m: WatchResponse, at: number) => void) {
  const abort = new AbortController();
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    resolveReady = resolve;
  });
  const done = (async () => {
    try {
      for await (const m of sync.watch({}, { signal: abort.signal })) {
        onMessage?.(m, performance.timeOrigin + performance.now());
        if (m.message.case === "snapshotChunk" && m.message.value.lastChunk) resolveReady();
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
  })();
  return {
    ready,
    close: async () => {
      abort.abort();
      await done;
    },
  };
}

function pick(sorted: number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))] ?? 0;
}

export async function gatewayStreamPhase<O extends { rps: number; cpuUs: number }>(ctx: StreamBenchContext<O>): Promise<StreamBenchResult<O>> {
  const subs = client(SubscriptionService, ctx.writer.grpcPort, ctx.writer.adminToken);
  let tierCounter = 0;
  const changeTier = () =>
    subs.updateSubscription({ subscription: { subscriptionId: ctx.subscriptionId, tier: `Tier${++tierCounter}` }, updateMask: { paths: ["tier"] } });

  // Commit to watcher: the event's commit time (the writer's clock; one machine) to its arrival.
  const latencies: number[] = [];
  // Where it goes: the write's call to the commit stamp (the writer's transaction up to its log
  // entries), the stamp to the call's answer (the rest of the commit, the answer's way back), and
  // the call's start to the arrival (end to end, whatever the stamp).
  const stampDelays: number[] = [];
  const answerDelays: number[] = [];
  const endToEnd: number[] = [];
  let commitStamp = 0;
  let arrival = 0;
  const waiting = new Map<string, () => void>();
  const latencyWatcher = watch(client(GatewaySyncService, ctx.watched.grpcPort, ctx.watched.gatewayToken), (m, at) => {
    if (m.message.case !== "event") return;
    const change = m.message.value.change;
    const entity = change.case === "upsert" ? change.value.entity : undefined;
    if (entity?.case !== "subscription" || entity.value.subscriptionId !== ctx.subscriptionId) return;
    const commit = m.message.value.commitTime;
    commitStamp = Number(commit?.seconds) * 1000 + (commit?.nanos ?? 0) / 1e6;
    arrival = at;
    latencies.push(at - commitStamp);
    waiting.get(entity.value.tier)?.();
  });
  await latencyWatcher.ready;
  const LATENCY_COMMITS = 300;
  for (let i = 0; i < LATENCY_COMMITS; i++) {
    const arrived = new Promise<void>((resolve) => waiting.set(`Tier${tierCounter + 1}`, resolve));
    const called = performance.timeOrigin + performance.now();
    await changeTier();
    const answered = performance.timeOrigin + performance.now();
    await arrived;
    stampDelays.push(commitStamp - called);
    answerDelays.push(answered - commitStamp);
    endToEnd.push(arrival - called);
    await new Promise((r) => setTimeout(r, 10));
  }
  await latencyWatcher.close();
  const quantiles = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { p50: pick(sorted, 0.5), p99: pick(sorted, 0.99) };
  };
  const latency = { ...quantiles(latencies), count: latencies.length };
  const breakdown = { callToStamp: quantiles(stampDelays), stampToAnswer: quantiles(answerDelays), callToArrival: quantiles(endToEnd) };
  console.log(`commit -> watcher: p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms over ${latency.count} commits`);
  for (const [name, q] of Object.entries(breakdown)) console.log(`  ${name}: p50 ${q.p50.toFixed(1)} ms, p99 ${q.p99.toFixed(1)} ms`);

  // ValidateToken with 100 watchers connected (each its own connection) against none, alternating
  // rounds; in both, a change every 100 ms (so the watchers have events to be sent).
  let writing = true;
  const writer = (async () => {
    while (writing) {
      await changeTier();
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const without: O[] = [];
  const withWatchers: O[] = [];
  const hundred = async () => {
    const watchers = Array.from({ length: 100 }, () => watch(client(GatewaySyncService, ctx.writer.grpcPort, ctx.writer.gatewayToken)));
    await Promise.all(watchers.map((w) => w.ready));
    const o = await ctx.drive();
    await Promise.all(watchers.map((w) => w.close()));
    return o;
  };
  for (let round = 0; round < ctx.rounds; round++) {
    if (round % 2 === 0) {
      without.push(await ctx.drive());
      withWatchers.push(await hundred());
    } else {
      withWatchers.push(await hundred());
      without.push(await ctx.drive());
    }
    console.log(
      `round ${round + 1}: ValidateToken without watchers ${without[round]?.rps} req/s ${without[round]?.cpuUs} µs, with 100 ${withWatchers[round]?.rps} req/s ${withWatchers[round]?.cpuUs} µs`,
    );
  }
  writing = false;
  await writer;
  const ratios = withWatchers.map((o, i) => o.rps / (without[i]?.rps || 1)).sort((a, b) => a - b);
  const ratio = ratios[Math.floor(ratios.length / 2)] ?? 0;

  // Memory: the watched server's RSS before and after 1,000 watchers (100 connections of 10 streams).
  const WATCHERS = 1000;
  await new Promise((r) => setTimeout(r, 2000));
  const before = ctx.rssKiB(ctx.watched.pid);
  const connections = Array.from({ length: 100 }, () => client(GatewaySyncService, ctx.watched.grpcPort, ctx.watched.gatewayToken));
  const many = Array.from({ length: WATCHERS }, (_, i) => watch(connections[i % connections.length] as Client<typeof GatewaySyncService>));
  await Promise.all(many.map((w) => w.ready));
  for (let i = 0; i < 5; i++) await changeTier();
  await new Promise((r) => setTimeout(r, 3000));
  const memoryPerWatcherKiB = (ctx.rssKiB(ctx.watched.pid) - before) / WATCHERS;
  await Promise.all(many.map((w) => w.close()));
  console.log(`memory: ${memoryPerWatcherKiB.toFixed(1)} KiB of server RSS per watcher (${WATCHERS} watchers)`);

  // The snapshot of 100,000 subscriptions (inserted directly, to the seeded API).
  const now = Date.now();
  for (let done = 0; done < 100_000; done += 500) {
    const rows = Array.from({ length: 500 }, () => ({
      id: randomUUID(),
      application_id: randomUUID(),
      api_id: ctx.apiId,
      tier: "Gold",
      state: "UNBLOCKED",
      created_at: now,
      updated_at: now,
    }));
    await ctx.db("subscriptions").insert(rows);
  }
  const snapshots: Array<StreamBenchResult<O>["snapshot"]> = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    let bytes = 0;
    let chunks = 0;
    let entities = 0;
    const w = watch(client(GatewaySyncService, ctx.writer.grpcPort, ctx.writer.gatewayToken), (m) => {
      if (m.message.case !== "snapshotChunk") return;
      bytes += toBinary(WatchResponseSchema, m).length;
      chunks++;
      entities += m.message.value.entities.length;
    });
    await w.ready;
    const ms = performance.now() - started;
    await w.close();
    snapshots.push({ ms, bytes, chunks, entities });
    console.log(`snapshot: ${entities} entities, ${(bytes / 2 ** 20).toFixed(1)} MiB in ${chunks} chunks, ${ms.toFixed(0)} ms`);
  }
  const snapshot = [...snapshots].sort((a, b) => a.ms - b.ms)[1] as StreamBenchResult<O>["snapshot"];
  return { latency, breakdown, without, with: withWatchers, ratio, memoryPerWatcherKiB, watchersForMemory: WATCHERS, snapshot };
}
