import { isDeepStrictEqual } from "node:util";
import { type Config, RESTART_ONLY_SETTINGS } from "./config.js";
import { type ConfigSource, loadConfig } from "./load.js";

export interface ReloadResult {
  config: Config;
  /** Settings that changed but take effect only after a restart. */
  restartRequired: string[];
}

/**
 * Holds the effective configuration. Readers take `current` on every use, so a reload applies
 * to the next call; settings bound at start (listeners, database, TLS, keys) are kept until a
 * restart and reported as such.
 */
export class ConfigStore {
  private config: Config;
  private loaded: Date;
  private readonly listeners: Array<(config: Config) => void> = [];

  constructor(
    private readonly source: ConfigSource,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.config = loadConfig(source);
    this.loaded = now();
  }

  get current(): Config {
    return this.config;
  }

  get loadTime(): Date {
    return this.loaded;
  }

  get sourceFile(): string | undefined {
    return this.source.file;
  }

  /**
   * Fixes the HTTP port once it is bound (configured as 0), so the issuer and endpoints derived
   * from it name the real port.
   */
  pinHttpPort(port: number): void {
    this.source.overrides = { ...this.source.overrides, http: { ...(this.source.overrides?.http as object), port } };
    this.config = loadConfig(this.source);
  }

  onChange(listener: (config: Config) => void): void {
    this.listeners.push(listener);
  }

  /** Re-reads the file; on any problem throws ConfigError and keeps the configuration it had. */
  reload(): ReloadResult {
    const next = loadConfig(this.source);
    const restartRequired = RESTART_ONLY_SETTINGS.filter((key) => !isDeepStrictEqual(next[key], this.config[key]));
    const applied: Config = { ...next };
    for (const key of RESTART_ONLY_SETTINGS) (applied as unknown as Record<string, unknown>)[key] = this.config[key];
    this.config = applied;
    this.loaded = this.now();
    for (const listener of this.listeners) listener(applied);
    return { config: applied, restartRequired: [...restartRequired] };
  }
}
