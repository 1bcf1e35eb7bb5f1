import { Writable } from "node:stream";
import { type Level, type Logger, pino } from "pino";

/** One line of pino's JSON log, parsed. */
export type LogLine = Record<string, unknown>;

export interface CapturedLog {
  logger: Logger;
  /** Every line written so far, parsed, in order. */
  lines: LogLine[];
  /** The same lines as written (to look for a secret in the whole log). */
  raw: string[];
}

/** A pino logger at `level` whose lines are kept here, parsed and as written. */
export function capturedLog(level: Level | "silent" = "info"): CapturedLog {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const text of String(chunk).split("\n").filter(Boolean)) {
        raw.push(text);
        lines.push(JSON.parse(text) as LogLine);
      }
      done();
    },
  });
  return { logger: pino({ level }, sink), lines, raw };
}
