/**
 * Node's arguments to run a TypeScript entry point of this repository as the tests do: workspace
 * packages (@keymanager/core) resolve to their sources (the "keymanager-source" export
 * condition), so nothing needs building first.
 */
export const RUN_TS = ["--conditions=keymanager-source", "--import", "tsx"];
