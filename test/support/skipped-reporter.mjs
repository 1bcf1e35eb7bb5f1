// A node:test reporter beside `spec` (npm test uses both): after the run it names every skipped
// test or suite, grouped by the reason it was skipped, so the summary says which database suites
// did not run and why (KM_TEST_POSTGRES_URL / KM_TEST_MYSQL_URL unset), not just "skipped N".
//
//   skipped: 15 suites on postgres (KM_TEST_POSTGRES_URL is not set): application lifecycle, ...
//   skipped: nothing

/** The database a suite title names ("storage contract on postgres"), if any. */
function databaseOf(name) {
  return /\bon (sqlite|postgres|mysql)$/.exec(name)?.[1];
}

export default async function* skippedReporter(source) {
  /** reason -> titles */
  const byReason = new Map();
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const { skip, name, details } = event.data;
    if (skip === undefined || skip === false) continue;
    const reason = typeof skip === "string" && skip !== "" ? skip : "no reason given";
    const kind = details?.type === "suite" ? "suite" : "test";
    const key = `${kind}\u0000${databaseOf(name) ?? ""}\u0000${reason}`;
    if (!byReason.has(key)) byReason.set(key, []);
    byReason.get(key).push(name);
  }
  if (byReason.size === 0) {
    yield "skipped: nothing\n";
    return;
  }
  for (const [key, names] of byReason) {
    const [kind, database, reason] = key.split("\u0000");
    const what = `${names.length} ${kind}${names.length === 1 ? "" : "s"}${database ? ` on ${database}` : ""}`;
    const titles = database ? names.map((n) => n.slice(0, -` on ${database}`.length)) : names;
    yield `skipped: ${what} (${reason}): ${titles.join(", ")}\n`;
  }
}
