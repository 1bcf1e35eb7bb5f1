// @keymanager/gateway's figures (npm run bench -- --only gateway-lib): decisions made in process
// from the live copy (a JWT verified against the streamed keys, an opaque token the server vouched
// for once), against unary ValidateToken and the ValidateTokens stream driven by h2load in the
// same run; the copy's memory for 100,000 subscriptions.
import { randomUUID } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Knex } from "knex";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "@keymanager/gateway";

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
  const options = { target: `127.0.0.1:${ctx.grpcPort}`, token: ctx.gatewayToken };
  const v = createGatewayValidator(options);
  await v.ready();
  const jwtInput = { ...ctx.request, token: ctx.tokens.jwt };
  const opaqueInput = { ...ctx.request, token: ctx.tokens.opaque };
  const result: LibBenchResult<O> = {
    jwt: [],
    opaque: [],
    unary: [],
    stream: [],
    memory: { subscriptions: 0, heapMiB: 0, bytesPerSubscription: 0, loadMs: 0 },
  };
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
