// @keymanager/gateway's figures (npm run bench -- --only gateway-lib): decisions made in process
// from the live copy (a JWT verified against the streamed keys, an opaque token the server vouched
// for once), against unary ValidateToken and the ValidateTokens stream driven by h2load in the
// same run; the copy's memory for 100,000 subscriptions.
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Knex } from "knex";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "@keymanager/gateway";
import { backend } from "../examples/gateway/backend.js";
import { startExampleGateway } from "../test/support/example-gateway.js";

export interface LibBenchContext<O extends { rps: number; cpuUs: number }> {
  grpcPort: number;
  gatewayToken: string;
  /** A JWT and an opaque token, both authorized for `request`. */
  tokens: { jwt: string; opaque: string };
  request: Omit<ValidateInput, "token">;
  apiId: string;
  db: Knex;
  rounds: number;
  seconds: number;
  unary: () => Promise<O>;
  stream: () => Promise<O>;
  /** A new token of the JWT or the opaque application, authorized for `request`. */
  issue: (kind: "jwt" | "opaque") => Promise<string>;
  /** RevokeToken through the gRPC API. */
  revoke: (token: string) => Promise<void>;
  /** Revocations timed through the example gateway (half JWT, half opaque). */
  revocationSamples: number;
  /** Only the revocation-to-refusal figures: no rounds, no memory (KM_BENCH_REVOCATION_ONLY=1). */
  revocationOnly?: boolean;
}

/** Time from RevokeToken's answer to the example gateway's first 401, in ms. */
export interface RevocationFigures {
  samples: number;
  all: Percentiles;
  jwt: Percentiles;
  opaque: Percentiles;
}

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

/** Decisions of one kind in a window: per second (one thread, one after another) and CPU per decision. */
export interface LibOutcome {
  rps: number;
  cpuUs: number;
}

export interface LibBenchResult<O> {
  jwt: LibOutcome[];
  opaque: LibOutcome[];
  unary: O[];
  stream: O[];
  memory: { subscriptions: number; heapMiB: number; bytesPerSubscription: number; loadMs: number };
  revocation: RevocationFigures;
}

async function decisions(v: GatewayValidator, input: ValidateInput, seconds: number): Promise<LibOutcome> {
  const answer = await v.validate(input);
  if (!answer.authorized) throw new Error(`not authorized in process: ${answer.statusName} ${answer.statusDescription}`);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const until = started + seconds * 1000;
  let count = 0;
  while (performance.now() < until) {
    for (let i = 0; i < 1000; i++) await v.validate(input);
    count += 1000;
  }
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { rps: Math.round(count / elapsed), cpuUs: (used.user + used.system) / count };
}

function gc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

export async function gatewayLibPhase<O extends { rps: number; cpuUs: number }>(ctx: LibBenchContext<O>): Promise<LibBenchResult<O>> {
  const result: LibBenchResult<O> = {
    jwt: [],
    opaque: [],
    unary: [],
    stream: [],
    memory: { subscriptions: 0, heapMiB: 0, bytesPerSubscription: 0, loadMs: 0 },
    revocation: { samples: 0, all: NONE, jwt: NONE, opaque: NONE },
  };
  if (ctx.revocationOnly) {
    result.revocation = await revocationToRefusal(ctx);
    return result;
  }
  const options = { target: `127.0.0.1:${ctx.grpcPort}`, token: ctx.gatewayToken };
  const v = createGatewayValidator(options);
  await v.ready();
  const jwtInput = { ...ctx.request, token: ctx.tokens.jwt };
  const opaqueInput = { ...ctx.request, token: ctx.tokens.opaque };
  try {
    for (let round = 0; round < ctx.rounds; round++) {
      const u = await ctx.unary();
      const s = await ctx.stream();
      const j = await decisions(v, jwtInput, ctx.seconds / 2);
      const o = await decisions(v, opaqueInput, ctx.seconds / 2);
      result.unary.push(u);
      result.stream.push(s);
      result.jwt.push(j);
      result.opaque.push(o);
      console.log(
        `round ${round + 1}: unary ${u.rps}/s ${u.cpuUs} µs server CPU; stream ${s.rps}/s ${s.cpuUs} µs; in process JWT ${j.rps}/s ${j.cpuUs.toFixed(2)} µs CPU, opaque ${o.rps}/s ${o.cpuUs.toFixed(2)} µs CPU`,
      );
    }
    const stats = v.stats();
    if (stats.remote > 1) throw new Error(`the server was asked ${stats.remote} times: not in-process figures`);
  } finally {
    await v.close();
  }

  result.revocation = await revocationToRefusal(ctx);

  // 100,000 subscriptions, inserted directly; a new validator loads them in its snapshot.
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
  const collect = gc();
  collect();
  const before = process.memoryUsage().heapUsed;
  const started = performance.now();
  const big = createGatewayValidator(options);
  await big.ready();
  const loadMs = performance.now() - started;
  collect();
  const after = process.memoryUsage().heapUsed;
  const subscriptions = big.stats().copy?.subscriptions ?? 0;
  await big.close();
  result.memory = { subscriptions, heapMiB: (after - before) / 2 ** 20, bytesPerSubscription: (after - before) / Math.max(1, subscriptions), loadMs };
  return result;
}

const NONE: Percentiles = { p50: 0, p99: 0, max: 0 };

function percentiles(list: number[]): Percentiles {
  const sorted = [...list].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * q) - 1)] ?? 0;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
}

/**
 * Revocation to refusal through the example gateway (examples/gateway/gateway.ts, a process of
 * its own, in front of a sample backend): for each sample a new token, allowed through the
 * gateway (twice: the second decided from its copy), revoked through the gRPC API, then the
 * gateway asked until it answers 401; the time from RevokeToken's answer to that 401.
 */
async function revocationToRefusal<O extends { rps: number; cpuUs: number }>(ctx: LibBenchContext<O>): Promise<RevocationFigures> {
  const upstream = backend();
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const gateway = await startExampleGateway({
    KM_GRPC: `127.0.0.1:${ctx.grpcPort}`,
    KM_GATEWAY_TOKEN: ctx.gatewayToken,
    UPSTREAM: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    API_CONTEXT: ctx.request.context,
    API_VERSION: ctx.request.version,
  }).catch((err: unknown) => {
    upstream.close();
    throw err;
  });
  try {
    const url = `${gateway.base}${ctx.request.context}/${ctx.request.version}/items/1`;
    const call = async (token: string) => (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status;
    const delays = { jwt: [] as number[], opaque: [] as number[] };
    for (let i = 0; i < ctx.revocationSamples; i++) {
      const kind = i % 2 === 0 ? "jwt" : "opaque";
      const token = await ctx.issue(kind);
      for (let k = 0; k < 2; k++) if ((await call(token)) !== 200) throw new Error(`${kind} token not allowed through the example gateway`);
      await ctx.revoke(token);
      const answered = performance.now();
      for (;;) {
        const status = await call(token);
        if (status === 401) break;
        if (status !== 200 || performance.now() - answered > 10_000)
          throw new Error(`${kind}: ${status} ${(performance.now() - answered).toFixed(0)} ms after the revocation`);
      }
      delays[kind].push(performance.now() - answered);
    }
    return {
      samples: ctx.revocationSamples,
      all: percentiles([...delays.jwt, ...delays.opaque]),
      jwt: percentiles(delays.jwt),
      opaque: percentiles(delays.opaque),
    };
  } finally {
    await gateway.stop();
    upstream.close();
  }
}
