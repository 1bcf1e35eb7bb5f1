import { after, before, describe } from "node:test";
import { type TestDatabase, testDatabases } from "./databases.js";

/** The database a suite runs on, created by the suite's first hook. */
export interface SuiteDatabase {
  /** sqlite, postgres or mysql. */
  readonly name: string;
  /** The URL of the fresh database; read it in a hook or a test, not while the suite is declared. */
  url(): string;
}

/**
 * Declares `body` once per database of testDatabases(): `${title} on sqlite` always, on postgres
 * and mysql when KM_TEST_POSTGRES_URL / KM_TEST_MYSQL_URL are set (skipped otherwise, saying so).
 * Each gets a fresh database, created before the body's hooks and dropped after them, so the
 * body's own `after` (closing its server) runs while the database still exists.
 */
export function describeOnEachDatabase(title: string, body: (database: SuiteDatabase) => void): void {
  for (const entry of testDatabases()) {
    describe(`${title} on ${entry.name}`, { skip: entry.skip }, () => {
      let handle: TestDatabase | undefined;
      before(async () => {
        if (!entry.create) throw new Error(`no ${entry.name} database`);
        handle = await entry.create();
      });
      body({
        name: entry.name,
        url() {
          if (!handle) throw new Error(`the ${entry.name} database is created in the suite's first before hook`);
          return handle.url;
        },
      });
      // Registered last, so it runs after the body's own after hooks.
      after(async () => {
        await handle?.drop();
      });
    });
  }
}
