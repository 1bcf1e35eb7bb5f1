// The example gateway (examples/gateway/gateway.ts) as a process of its own, as its README runs
// it, for the tests and the bench: started, waited for until it says it listens, stopped.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

/** What the example gateway prints once it listens: its port and its copy's stats. */
export interface ExampleGatewayStarted {
  listening: number;
  copy: { usable: boolean; apis: number };
}

export interface ExampleGateway {
  /** http://127.0.0.1:<port> */
  base: string;
  started: ExampleGatewayStarted;
  process: ChildProcess;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
}

const START_MS = 60_000;

/** Starts it with `env` (KM_GRPC, KM_GATEWAY_TOKEN, UPSTREAM, API_CONTEXT, ...) over this process's own; PORT 0. */
export async function startExampleGateway(env: Record<string, string>): Promise<ExampleGateway> {
  const child = spawn(process.execPath, ["--conditions=keymanager-source", "--import", "tsx", "examples/gateway/gateway.ts"], {
    env: { ...process.env, PORT: "0", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    await Promise.race([once(child, "exit"), sleep(10_000, undefined, { ref: false }).then(() => child.kill("SIGKILL"))]);
  };
  try {
    const [line] = (await Promise.race([
      once(createInterface({ input: child.stdout as NodeJS.ReadableStream }), "line"),
      once(child, "exit").then(([code]) => {
        throw new Error(`the example gateway exited (${code}) before it listened`);
      }),
      sleep(START_MS, undefined, { ref: false }).then(() => {
        throw new Error(`the example gateway did not start within ${START_MS / 1000} s`);
      }),
    ])) as [string];
    const started = JSON.parse(line) as ExampleGatewayStarted;
    return { base: `http://127.0.0.1:${started.listening}`, started, process: child, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
