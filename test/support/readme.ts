import { readFileSync } from "node:fs";

// What the tests that run the README's commands as written share: its sections, their ```sh
// blocks, and one bash session running them with each block's output told apart.

/** The README as committed. */
export const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** Echoed after each block of a script made by `markedScript`: stdout splits on it, block by block. */
export const README_BLOCK_MARK = "----- end of README block -----";

/** The text of the README's `## heading` section, up to the next `## ` heading. */
export function readmeSection(heading: string): string {
  const start = README.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const rest = README.slice(start + heading.length + 5);
  const end = rest.search(/\n## /);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The ```sh blocks of the README's `## heading` section, in order. */
export function readmeShellBlocks(heading: string): string[] {
  return [...readmeSection(heading).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
}

/** One bash script (stopping at the first failure) running the blocks, each followed by the mark. */
export function markedScript(blocks: readonly string[]): string {
  return ["set -euo pipefail", ...blocks.map((b) => `${b}\necho '${README_BLOCK_MARK}'`)].join("\n");
}

/** This process's environment without KM_ variables (the README's commands get only those given). */
export function environmentWithoutKm(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("KM_")));
}
