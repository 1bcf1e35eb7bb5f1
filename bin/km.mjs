#!/usr/bin/env node
// The `km` command (package.json "bin": npx km --help). Runs the built CLI (dist/src/cli.js) in
// this process when dist/ is at least as new as every source it is built from; otherwise the
// sources themselves through tsx, rather than rebuilding on a call (npm run build or npm start
// bring dist/ up to date). Either way nothing but the command's answer reaches stdout.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const BUILD_INFO = join(root, "dist/.tsbuildinfo");
const SOURCES = ["src", "gen", "packages/core/src"].map((dir) => join(root, dir));

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function builtIsCurrent() {
  try {
    const built = statSync(BUILD_INFO).mtimeMs;
    return SOURCES.every((dir) => newestMtime(dir) <= built);
  } catch {
    return false;
  }
}

if (builtIsCurrent()) {
  await import(pathToFileURL(join(root, "dist/src/cli.js")).href);
} else {
  const result = spawnSync(process.execPath, ["--conditions=keymanager-source", "--import", "tsx", join(root, "src/cli.ts"), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  if (result.signal) process.kill(process.pid, result.signal);
  process.exitCode = result.status ?? 1;
}
