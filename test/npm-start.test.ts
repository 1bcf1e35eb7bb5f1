import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { type ReplicaProcess, startReplica } from "./support/replica-process.js";

// `npm start` as an operator runs it (scripts/start.mjs): it brings dist/ up to date with tsc's
// incremental build, runs the server in its own process, and a signal sent to npm stops it.

const npmStart = { command: "npm", args: ["start", "--silent"], listenTimeoutMs: 180_000 };

/** Whether something accepts connections on the port (127.0.0.1). */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function signalAndWait(server: ReplicaProcess, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  assert.equal((await fetch(`http://127.0.0.1:${server.httpPort}/healthz`)).status, 200);
  assert.ok(await listening(server.grpcPort));
  server.process.kill(signal); // the npm process, not its child
  const exit = await Promise.race([
    server.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`npm start still running 30 s after ${signal}`)), 30_000)),
  ]);
  assert.equal(await listening(server.httpPort), false, "the HTTP port is still open");
  assert.equal(await listening(server.grpcPort), false, "the gRPC port is still open");
  return exit;
}

test("npm start: builds only what changed, runs the server, stops on SIGTERM and SIGINT sent to npm", { timeout: 400_000 }, async (t) => {
  // The first start compiles whatever is out of date (everything in a fresh checkout).
  const first = await startReplica({}, npmStart);
  assert.match(first.stderr(), /^start: (dist\/ is up to date, nothing compiled|compiled .+ in \d+ ms)$/m);
  const firstExit = await signalAndWait(first, "SIGTERM");
  assert.deepEqual(firstExit, { code: 0, signal: null });
  assert.ok(
    first.log.some((line) => line.msg === "shutting down" && line.signal === "SIGTERM"),
    "the server shut down gracefully",
  );
  await first.stop();

  // Nothing changed since: no compilation, and SIGINT (Ctrl-C) stops it as well.
  const started = Date.now();
  const second = await startReplica({}, npmStart);
  const secondStartMs = Date.now() - started;
  assert.match(second.stderr(), /^start: dist\/ is up to date, nothing compiled$/m);
  const secondExit = await signalAndWait(second, "SIGINT");
  assert.deepEqual(secondExit, { code: 0, signal: null });
  await second.stop();
  t.diagnostic(`second npm start listening after ${secondStartMs} ms`);
});
