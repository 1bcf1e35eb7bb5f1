// km: the admin command line. `km <group> <command> [options]` (or `km <command>` for bootstrap
// and health); every command answers on stdout and nothing else goes there; errors and hints go
// to stderr. Exit codes: 0 done, 1 the server (or the check) said no, 2 a mistake in the command line.
import { parseArgs } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { ConfigError } from "../config/load.js";
import { DomainError } from "../domain/errors.js";
import { Answer, type CliOption, type Command, type CommandGroup, UsageError } from "./command.js";
import { apis, resources, subscriptions } from "./commands/apis.js";
import { applications } from "./commands/applications.js";
import { bootstrap } from "./commands/bootstrap.js";
import { clients, signingKeys, users } from "./commands/admin.js";
import { config, health } from "./commands/config.js";
import { tokens } from "./commands/tokens.js";
import { trustedIssuers } from "./commands/trusted-issuers.js";
import { scopes } from "./commands/scopes.js";
import { serverContext, TokenRefused } from "./connection.js";
import { human } from "./output.js";

export const COMMANDS: Record<string, Command | CommandGroup> = {
  bootstrap,
  health,
  apps: applications,
  apis,
  resources,
  subscriptions,
  tokens,
  users,
  clients,
  "signing-keys": signingKeys,
  "trusted-issuers": trustedIssuers,
  scopes,
  config,
};

const CONNECTION_OPTIONS: Record<string, CliOption> = {
  url: { type: "string", value: "URL", help: "the server's HTTP port (KM_URL; default http://127.0.0.1:8080)" },
  token: { type: "string", value: "TOKEN", help: "a bearer token of a system client (KM_TOKEN)" },
  "client-id": { type: "string", value: "ID", help: "or a system client's id, to get a token with (KM_CLIENT_ID)" },
  "client-secret": { type: "string", value: "SECRET", help: "and its secret (KM_CLIENT_SECRET; prefer the variable: arguments show in ps)" },
  "timeout-ms": { type: "string", value: "MS", help: "give up on a call after MS milliseconds (default 30000)" },
};
const OUTPUT_OPTIONS: Record<string, CliOption> = {
  json: { type: "boolean", help: "the answer as JSON (the contract's JSON form for RPC answers)" },
  help: { type: "boolean", short: "h", help: "this help" },
};

function isGroup(entry: Command | CommandGroup): entry is CommandGroup {
  return "commands" in entry;
}

function optionLines(options: Record<string, CliOption>): string[] {
  return Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
    return `  ${flag.padEnd(34)} ${o.help}`;
  });
}

function commandLines(entries: Record<string, Command | CommandGroup>): string[] {
  return Object.entries(entries).map(([name, e]) => `  ${name.padEnd(18)} ${e.summary}`);
}

export function mainHelp(): string {
  return [
    "usage: km <command> [options]            km <group> <command> [options]",
    "",
    "Administers a running key manager through its Connect API (KM_URL), with a system client's",
    "token (--token / KM_TOKEN, or KM_CLIENT_ID and KM_CLIENT_SECRET to get one). bootstrap and",
    "config check need no server. `km <group> --help` and `km <group> <command> --help` say more.",
    "",
    "commands and groups:",
    ...commandLines(COMMANDS),
    "",
    "options of every command:",
    ...optionLines({ ...OUTPUT_OPTIONS, ...CONNECTION_OPTIONS }),
  ].join("\n");
}

function groupHelp(name: string, group: CommandGroup): string {
  return [`usage: km ${name} <command> [options]`, "", `${group.summary}.`, "", "commands:", ...commandLines(group.commands)].join("\n");
}

function commandHelp(path: string, command: Command): string {
  const own = command.options ?? {};
  const shared = command.offline ? OUTPUT_OPTIONS : { ...OUTPUT_OPTIONS, ...CONNECTION_OPTIONS };
  return [
    `usage: km ${path}${command.positionals ? ` ${command.positionals}` : ""} [options]`,
    "",
    `${command.summary[0]?.toUpperCase()}${command.summary.slice(1)}.`,
    ...(command.details ? [command.details] : []),
    ...(Object.keys(own).length > 0 ? ["", "options:", ...optionLines(own)] : []),
    "",
    "common options:",
    ...optionLines(shared),
  ].join("\n");
}

interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
  stdin(): Promise<string>;
}

/** Runs one command line; the exit code. */
export async function runCli(argv: string[], io: Io): Promise<number> {
  const [first, second] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    io.stdout(mainHelp());
    return first === undefined ? 2 : 0;
  }
  const entry = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (!entry) {
    io.stderr(`km: unknown command "${first}" (km --help lists the commands)`);
    return 2;
  }
  let command: Command;
  let path = first;
  let rest = argv.slice(1);
  if (isGroup(entry)) {
    if (second === undefined || second === "--help" || second === "-h" || second === "help") {
      io.stdout(groupHelp(first, entry));
      return second === undefined ? 2 : 0;
    }
    const sub = Object.hasOwn(entry.commands, second) ? entry.commands[second] : undefined;
    if (!sub) {
      io.stderr(`km: unknown command "${first} ${second}" (km ${first} --help lists its commands)`);
      return 2;
    }
    command = sub;
    path = `${first} ${second}`;
    rest = argv.slice(2);
  } else {
    command = entry;
  }
  const shared = { ...OUTPUT_OPTIONS, ...(command.offline ? {} : CONNECTION_OPTIONS) };
  const clash = Object.keys(command.options ?? {}).find((name) => Object.hasOwn(shared, name));
  if (clash) throw new Error(`km ${path}: its option --${clash} is a common option`);
  const options = { ...(command.options ?? {}), ...shared };
  try {
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: rest,
        options: Object.fromEntries(
          Object.entries(options).map(([n, o]) => [n, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) }]),
        ),
        allowPositionals: command.positionals !== undefined,
        strict: true,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
    if (values.help === true) {
      io.stdout(commandHelp(path, command));
      return 0;
    }
    const context = serverContext(values, io.env, io.stdin);
    const result = await command.run({ values, positionals: parsed.positionals }, context);
    if (typeof result === "number") return result;
    const answer = result instanceof Answer ? result : new Answer(result, 0);
    const text = values.json === true || command.alwaysJson ? JSON.stringify(answer.value, null, 2) : human(answer.value);
    if (text !== "") io.stdout(text);
    return answer.exitCode;
  } catch (thrown) {
    // What the token interceptor threw reaches here wrapped in a ConnectError.
    const err = thrown instanceof ConnectError && (thrown.cause instanceof UsageError || thrown.cause instanceof TokenRefused) ? thrown.cause : thrown;
    if (err instanceof TokenRefused) {
      io.stderr(`km ${path}: ${err.message}`);
      return 1;
    }
    if (err instanceof UsageError) {
      io.stderr(`km ${path}: ${err.message}\n(km ${path} --help says how)`);
      return 2;
    }
    if (err instanceof ConnectError) {
      io.stderr(`km ${path}: ${Code[err.code] ?? err.code}: ${err.rawMessage}`);
      return 1;
    }
    if (err instanceof ConfigError || err instanceof DomainError) {
      io.stderr(`km ${path}: ${err.message}`);
      return 2;
    }
    if (err instanceof TypeError && (err as { cause?: { code?: string } }).cause?.code === "ECONNREFUSED") {
      io.stderr(`km ${path}: cannot reach the server: ${(err as { cause: Error }).cause.message}`);
      return 1;
    }
    throw err;
  }
}
