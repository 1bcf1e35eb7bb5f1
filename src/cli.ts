// km, the admin command line (package.json "bin"; `npx km --help`). The commands are in cli/.
import { text } from "node:stream/consumers";
import { runCli } from "./cli/main.js";

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(`${t}\n`),
  stderr: (t) => process.stderr.write(`${t}\n`),
  env: process.env,
  stdin: () => text(process.stdin),
});
