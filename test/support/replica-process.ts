import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { RUN_TS } from "./run-ts.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The service as a process of its own (`node --conditions=keymanager-source --import tsx src/main.ts`), ports chosen by the OS. */
export interface ReplicaProcess {
  process: ChildProcess;
  grpcPort: number;
  httpPort: number;
  /** Its log lines (pino JSON) so far. */
  log: Array<Record<string, unknown>>;
  /** Resolves with the first log line, from now on, whose msg is `msg`. */
  logged(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** How the process ended, once it has. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, and the exit. */
  stop(): Promise<void>;
  /** What it wrote to stderr so far. */
  stderr(): string;
}

export interface ReplicaCommand {
  /** The program and its arguments; the service's sources under tsx unless given. */
  command?: string;
  args?: string[];
  /** How long it may take to listen (default 30 s). */
  listenTimeoutMs?: number;
}

/**
 * Starts one replica with `env` (KM_* settings) on top of the parent's environment without its
 * KM_* variables; both ports on 127.0.0.1 and port 0, a data directory of its own unless `env`
 * names one (KM_DATA_DIR).
 */
export async function startReplica(env: Record<string, string>, run: ReplicaCommand = {}): Promise<ReplicaProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "km-replica-"));
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("KM_")));
  const child = spawn(run.command ?? process.execPath, run.args ?? [...RUN_TS, "src/main.ts"], {
    cwd: ROOT,
    env: {
      ...inherited,
      KM_DATA_DIR: dataDir,
      KM_GRPC_HOST: "127.0.0.1",
      KM_GRPC_PORT: "0",
      KM_HTTP_HOST: "127.0.0.1",
      KM_HTTP_PORT: "0",
      KM_LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log: Array<Record<string, unknown>> = [];
  const waiters: Array<{ msg: string; resolve: (line: Record<string, unknown>) => void }> = [];
  let stderr = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  let buffered = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const text of lines) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      log.push(line);
      for (const w of waiters.splice(0)) {
        if (w.msg === line.msg) w.resolve(line);
        else waiters.push(w);
      }
    }
  });
  const logged = (msg: string, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${msg}" in the replica's log within ${timeoutMs} ms`)), timeoutMs);
      waiters.push({
        msg,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const listening = await Promise.race([
      logged("key manager listening", run.listenTimeoutMs ?? 30_000),
      exited.then(() => Promise.reject(new Error(`the replica exited before listening: ${stderr}`))),
    ]);
    return {
      process: child,
      grpcPort: Number(listening.grpcPort),
      httpPort: Number(listening.httpPort),
      log,
      logged,
      exited,
      stop,
      stderr: () => stderr,
    };
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** A token of a system client from the replica's /oauth2/token (client_credentials, Basic). */
export async function clientToken(replica: ReplicaProcess, client: { clientId: string; clientSecret: string }): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${replica.httpPort}/oauth2/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString("base64")}`,
    },
    body: "grant_type=client_credentials",
  });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { access_token: string }).access_token;
}
