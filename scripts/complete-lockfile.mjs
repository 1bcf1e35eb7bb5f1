// The package registry reachable from our machines has only the linux-x64 and linux-aarch64
// builds of buf, so `npm install` leaves buf's other platform packages out of the lock file and
// `npm ci` then refuses it. This adds them back as the public registry would list them (they are
// optional and never fetched on Linux). Run after any `npm install` that rewrites the lock file.
import { readFileSync, writeFileSync } from "node:fs";

const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
const buf = lock.packages["node_modules/@bufbuild/buf"];
const platforms = {
  "darwin-arm64": ["darwin", "arm64"],
  "darwin-x64": ["darwin", "x64"],
  "linux-aarch64": ["linux", "arm64"],
  "linux-armv7": ["linux", "arm"],
  "linux-x64": ["linux", "x64"],
  "win32-arm64": ["win32", "arm64"],
  "win32-x64": ["win32", "x64"],
};
for (const [name, [os, cpu]] of Object.entries(platforms)) {
  const key = `node_modules/@bufbuild/buf-${name}`;
  lock.packages[key] ??= { version: buf.version, dev: true, license: "Apache-2.0", optional: true, os: [os], cpu: [cpu], engines: { node: ">=12" } };
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))));
writeFileSync("package-lock.json", `${JSON.stringify(lock, null, 2)}\n`);
