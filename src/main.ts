import { parseArgs } from "node:util";
import { App } from "./app.js";
import { ConfigError } from "./config/load.js";

const USAGE = `usage: node dist/src/main.js [--config FILE]   (npm start: the same, building dist/ first if anything changed)

Runs the key manager: gRPC and HTTP ports, the database of the file (KM_CONFIG_FILE overrides
--config; KM_* variables override the file). SIGTERM or SIGINT stops it gracefully.`;

const { values } = parseArgs({ options: { config: { type: "string" }, help: { type: "boolean", short: "h" } } });
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const file = process.env.KM_CONFIG_FILE ?? values.config;

let app: App;
try {
  app = new App({ config: { file, env: process.env } });
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  app.logger.info({ signal }, "shutting down");
  await app.close();
  app.logger.info("stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));

app.start().catch((err: unknown) => {
  app.logger.fatal({ err }, "failed to start");
  process.exit(1);
});
