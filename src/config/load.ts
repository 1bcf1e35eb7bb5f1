import { closeSync, openSync, readSync } from "node:fs";
import { parse as parseToml } from "smol-toml";
import type { z } from "zod";
import { type Config, fromSection } from "./config.js";
import { deploymentFile } from "./schema.js";

/** Environment variables that override the deployment file, and the setting each one sets. */
export const ENV_OVERRIDES: Readonly<Record<string, readonly string[]>> = {
  KM_NAME: ["name"],
  KM_TOKEN_TYPE: ["token_type"],
  KM_JWT_ALGORITHM: ["jwt", "algorithm"],
  KM_ISSUER: ["issuer"],
  KM_DATA_DIR: ["data_dir"],
  KM_LOG_LEVEL: ["log_level"],
  KM_ACCESS_LOG_LEVEL: ["access_log_level"],
  KM_GRPC_HOST: ["grpc", "host"],
  KM_GRPC_PORT: ["grpc", "port"],
  KM_GRPC_MAX_CONNECTIONS: ["grpc", "max_connections"],
  KM_HTTP_HOST: ["http", "host"],
  KM_HTTP_PORT: ["http", "port"],
  KM_HTTP_MAX_CONNECTIONS: ["http", "max_connections"],
  KM_DATABASE_URL: ["database", "url"],
  KM_DATABASE_POOL_MAX: ["database", "pool_max"],
  KM_DATABASE_STATEMENT_TIMEOUT_MS: ["database", "statement_timeout_ms"],
  KM_DATABASE_ACQUIRE_TIMEOUT_MS: ["database", "acquire_timeout_ms"],
  KM_DATABASE_HEALTH_CHECK_INTERVAL_MS: ["database", "health_check_interval_ms"],
  KM_TLS_CERT_FILE: ["tls", "cert_file"],
  KM_TLS_KEY_FILE: ["tls", "key_file"],
  KM_TLS_CLIENT_CA_FILE: ["tls", "client_ca_file"],
  KM_ENCRYPTION_KEY: ["encryption", "key"],
  KM_CLUSTER_POLL_INTERVAL_MS: ["cluster", "poll_interval_ms"],
  KM_CHANGE_LOG_RETAIN_SECONDS: ["cluster", "change_log_retain_seconds"],
  KM_TRUSTED_PROXIES: ["authentication", "trusted_proxies"],
  KM_PAGING_DEFAULT_PAGE_SIZE: ["paging", "default_page_size"],
  KM_PAGING_MAX_PAGE_SIZE: ["paging", "max_page_size"],
  KM_METRICS_ENABLED: ["metrics", "enabled"],
  KM_METRICS_HOST: ["metrics", "host"],
  KM_METRICS_PORT: ["metrics", "port"],
  KM_TRACING_EXPORTER: ["tracing", "exporter"],
  KM_TRACING_OTLP_ENDPOINT: ["tracing", "otlp_endpoint"],
  KM_GATEWAY_CALLER_SECRETS_SHA256: ["gateway", "caller_secrets_sha256"],
};

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration (${source}): ${problems.join("; ")}`);
  }
}

export interface ConfigSource {
  /** Path of the TOML deployment file; undefined for defaults and environment only. */
  file: string | undefined;
  env: Record<string, string | undefined>;
  /** Settings applied last, above file and environment (tests, command-line flags). */
  overrides?: Record<string, unknown>;
}

/** Reads, merges and validates the configuration; throws ConfigError saying every problem. */
export function loadConfig(source: ConfigSource): Config {
  const raw = source.file ? readToml(source.file, maxFileBytes(source.env)) : {};
  const section = asObject(raw.key_manager ?? {}, source.file ?? "defaults");
  applyEnv(section, source.env);
  deepMerge(section, source.overrides ?? {});
  const result = deploymentFile.safeParse({ ...raw, key_manager: section });
  if (!result.success) throw new ConfigError(source.file ?? "environment", formatIssues(result.error.issues));
  return fromSection(result.data.key_manager);
}

/** The largest deployment file read (at start and on LoadConfiguration): `KM_CONFIG_MAX_BYTES`, default 1 MiB. */
export const DEFAULT_CONFIG_MAX_BYTES = 1024 * 1024;

function maxFileBytes(env: Record<string, string | undefined>): number {
  const value = env.KM_CONFIG_MAX_BYTES;
  if (value === undefined || value === "") return DEFAULT_CONFIG_MAX_BYTES;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError("environment", ["KM_CONFIG_MAX_BYTES: must be a positive integer of bytes"]);
  return n;
}

function readToml(file: string, maxBytes: number): Record<string, unknown> {
  let text: string;
  try {
    text = readCapped(file, maxBytes);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(file, [`cannot read file: ${(err as NodeJS.ErrnoException).code ?? "error"}`]);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(file, [`not valid TOML: ${(err as Error).message.split("\n")[0]}`]);
  }
}

/**
 * The file's text, read a chunk at a time and given up past maxBytes: a path to an endless or
 * huge file (/dev/zero, a log) is refused at once instead of read until memory runs out.
 */
function readCapped(file: string, maxBytes: number): string {
  const fd = openSync(file, "r");
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes + 1 - size));
      const read = readSync(fd, chunk, 0, chunk.length, null);
      if (read === 0) break;
      chunks.push(chunk.subarray(0, read));
      size += read;
      if (size > maxBytes) throw new ConfigError(file, [`the file is larger than ${maxBytes} bytes (KM_CONFIG_MAX_BYTES)`]);
    }
    return Buffer.concat(chunks, size).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function asObject(value: unknown, source: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(source, ["key_manager: must be a table"]);
  }
  return structuredClone(value as Record<string, unknown>);
}

function applyEnv(section: Record<string, unknown>, env: Record<string, string | undefined>): void {
  for (const [name, path] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value !== undefined && value !== "") setPath(section, path, value);
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (isPlainObject(value) && isPlainObject(existing)) deepMerge(existing, value);
    else target[key] = isPlainObject(value) ? structuredClone(value) : value;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.map(String).join(".") : "(file)";
    return `${path}: ${issue.message}`;
  });
}
