#!/usr/bin/env node
// CI: the Node.js running here is one package.json's engines.node accepts (the README says the
// same), and so is every installed package's own engines.node: a dependency that needs a newer
// Node than ours fails the run instead of printing EBADENGINE and being ignored.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import semver from "semver";

const wanted = JSON.parse(readFileSync("package.json", "utf8")).engines?.node;
const running = process.versions.node;
const problems = [];
if (!wanted) problems.push("package.json has no engines.node");
else if (!semver.satisfies(running, wanted)) problems.push(`Node.js ${running} does not satisfy package.json engines.node "${wanted}"`);

/** Every installed package's engines.node (node_modules, nested ones too). */
function* installed(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.name.startsWith("@")) {
      yield* installed(path);
      continue;
    }
    try {
      const manifest = JSON.parse(readFileSync(join(path, "package.json"), "utf8"));
      if (manifest.engines?.node) yield { name: `${manifest.name}@${manifest.version}`, node: manifest.engines.node };
    } catch {}
    yield* installed(join(path, "node_modules"));
  }
}

for (const pkg of installed("node_modules")) {
  if (!semver.satisfies(running, pkg.node)) problems.push(`${pkg.name} requires Node.js "${pkg.node}", this is ${running}`);
}
if (problems.length > 0) {
  for (const p of problems) console.error(`check-node: ${p}`);
  process.exit(1);
}
console.log(`check-node: Node.js ${running} satisfies engines.node "${wanted}" and every installed package's`);
