// The shape of a `km` command and of the context it runs in. Commands are declared as data
// (summary, options, positionals) so `--help` is generated from the same table that parses them.
import type { DescService, JsonObject } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";

export interface CliOption {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  /** Shown in --help: what it is, its values and default. */
  help: string;
  /** The value's placeholder in --help (string options). */
  value?: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface CommandInput {
  values: OptionValues;
  positionals: string[];
}

/** What a command may use: the server's clients (Connect over KM_URL, with the caller's token) and the HTTP port itself. */
export interface CliContext {
  url: string;
  client<S extends DescService>(service: S): Client<S>;
  /** A request to the server's HTTP port (relative path), with the caller's token when `authenticated`. */
  http(path: string, init?: RequestInit & { authenticated?: boolean }): Promise<Response>;
  /** Standard input, whole (for secrets given as "-"). */
  stdin(): Promise<string>;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  summary: string;
  /** Positional arguments, as shown in --help (e.g. "<access_token>|-"). */
  positionals?: string;
  /** Further lines of --help. */
  details?: string;
  options?: Record<string, CliOption>;
  /** Does not talk to a server (no --url / --token). */
  offline?: boolean;
  /** Prints JSON whatever the output format (its output is meant for machines). */
  alwaysJson?: boolean;
  /** The answer (printed, as JSON with --json; exit code 0), an Answer (with its exit code), or a number: the exit code, the command having printed itself. */
  run(input: CommandInput, context: CliContext): Promise<unknown>;
}

/** An answer with an exit code other than 0 (e.g. a health check that found the server not serving). */
export class Answer {
  constructor(
    readonly value: unknown,
    readonly exitCode: number,
  ) {}
}

export interface CommandGroup {
  summary: string;
  commands: Record<string, Command>;
}

/** A mistake in the command line: said on stderr with the usage, exit code 2. */
export class UsageError extends Error {}

/** The option's value, which must be given. */
export function required(values: OptionValues, name: string): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

export function optional(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

export function list(values: OptionValues, name: string): string[] | undefined {
  const value = values[name];
  return Array.isArray(value) ? value.flatMap((v) => v.split(",")).filter((v) => v !== "") : undefined;
}

/** An enum value by its short name ("production") or full name ("KEY_TYPE_PRODUCTION"). */
export function enumName(prefix: string, value: string | undefined, allowed: readonly string[]): string | undefined {
  if (value === undefined) return undefined;
  const upper = value.toUpperCase().replaceAll("-", "_");
  const full = upper.startsWith(`${prefix}_`) ? upper : `${prefix}_${upper}`;
  const short = full.slice(prefix.length + 1).toLowerCase();
  if (!allowed.includes(short)) throw new UsageError(`"${value}" is not one of ${allowed.join(", ")}`);
  return full;
}

/** The positional argument, or standard input when it is "-" (secrets kept out of the process list). */
export async function positionalOrStdin(input: CommandInput, context: CliContext, name: string): Promise<string> {
  const [value, ...rest] = input.positionals;
  if (value === undefined || value === "") throw new UsageError(`${name} is required (or "-" to read it from standard input)`);
  if (rest.length > 0) throw new UsageError(`one ${name} only`);
  return value === "-" ? (await context.stdin()).trim() : value;
}

/** Drops undefined members, recursively, so a request JSON carries only what was given. */
export function defined(value: Record<string, unknown>): JsonObject {
  return dropUndefined(value) as JsonObject;
}

function dropUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropUndefined);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, dropUndefined(v)]),
    );
  }
  return value;
}
