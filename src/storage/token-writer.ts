import type { Knex } from "knex";
import type { TokenRecord } from "../domain/model/index.js";
import { isDatabaseUnavailable } from "./errors.js";
import { againAfterDeadlocks } from "./store.js";
import { TokenRepository } from "./token-repository.js";

interface Pending {
  record: TokenRecord;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for issued tokens: inserts arriving while a write is in flight go together in one
 * multi-row INSERT (one transaction). Each caller is answered only after its row is committed,
 * so nothing acknowledged is lost; a failing batch is retried row by row so each caller gets its
 * own answer. A batch or row the database rolled back to break a deadlock is written again.
 * A batch the database cannot take (down, or past the statement or connection deadline of
 * storage/deadlines.ts) fails all of its callers with that error at once (UNAVAILABLE to them)
 * and the writer goes on to the next batch: no row-by-row retry against a database that is not
 * answering, and no caller waits on another's batch for longer than its deadlines.
 */
export class TokenWriter {
  private queue: Pending[] = [];
  private draining = false;

  constructor(
    private readonly db: Knex,
    private readonly maxBatch = 200,
  ) {}

  insert(record: TokenRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    const repository = new TokenRepository(this.db);
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        await againAfterDeadlocks(() => repository.insertMany(batch.map((p) => p.record)));
        for (const p of batch) p.resolve();
      } catch (err) {
        if (isDatabaseUnavailable(err)) {
          for (const p of batch) p.reject(err);
          continue;
        }
        await this.rowByRow(repository, batch);
      }
    }
    this.draining = false;
  }

  /** Each row alone, so each caller gets its own answer; once the database stops answering, the rest get that answer. */
  private async rowByRow(repository: TokenRepository, batch: Pending[]): Promise<void> {
    for (const [i, p] of batch.entries()) {
      try {
        await againAfterDeadlocks(() => repository.insert(p.record));
        p.resolve();
      } catch (err) {
        p.reject(err);
        if (isDatabaseUnavailable(err)) {
          for (const rest of batch.slice(i + 1)) rest.reject(err);
          return;
        }
      }
    }
  }
}
