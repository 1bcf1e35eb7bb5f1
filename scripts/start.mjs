#!/usr/bin/env node
// npm start: brings dist/ up to date with TypeScript's own incremental build (tsc -b over
// tsconfig.build.json and the workspace packages it references; nothing is compiled when no input
// changed), then runs the server in this very process, so a signal sent to `npm start` reaches it.
// Arguments are the server's (--config FILE). Without TypeScript installed (npm ci --omit=dev) the
// existing dist/ is run as it is.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const SERVER = join(root, "dist/src/main.js");

/** Builds what is out of date; false when the build failed. */
async function build() {
  let ts;
  try {
    ts = (await import("typescript")).default;
  } catch {
    if (existsSync(SERVER)) return true;
    process.stderr.write("start: dist/ is missing and TypeScript is not installed: run npm ci, then npm start\n");
    return false;
  }
  let errors = 0;
  const report = (diagnostic) => {
    if (diagnostic.category === ts.DiagnosticCategory.Error) errors++;
    process.stderr.write(ts.formatDiagnosticsWithColorAndContext([diagnostic], formatHost(ts)));
  };
  const host = ts.createSolutionBuilderHost(ts.sys, undefined, report, () => {});
  const builder = ts.createSolutionBuilder(host, [join(root, "tsconfig.build.json")], {});
  const started = Date.now();
  const built = [];
  for (let project = builder.getNextInvalidatedProject(); project; project = builder.getNextInvalidatedProject()) {
    built.push(project.project);
    project.done();
  }
  if (built.length === 0) {
    process.stderr.write("start: dist/ is up to date, nothing compiled\n");
  } else {
    const names = built.map((p) => p.slice(root.length + 1)).join(", ");
    process.stderr.write(`start: compiled ${names} in ${Date.now() - started} ms\n`);
  }
  return errors === 0;
}

function formatHost(ts) {
  return { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => ts.sys.newLine };
}

if (!(await build())) {
  process.exitCode = 1;
} else {
  await import(pathToFileURL(SERVER).href);
}
