import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";

/** Awaits a call expected to fail with `code`; returns the error for further checks. */
export async function rejectsWith(promise: Promise<unknown>, code: Code, messagePattern?: RegExp): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    const ce = ConnectError.from(err);
    assert.equal(Code[ce.code], Code[code], `expected ${Code[code]}, got ${Code[ce.code]}: ${ce.rawMessage}`);
    if (messagePattern) assert.match(ce.rawMessage, messagePattern);
    return ce;
  }
  assert.fail(`expected ${Code[code]}, but the call succeeded`);
}
