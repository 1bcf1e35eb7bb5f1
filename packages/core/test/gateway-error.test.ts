import assert from "node:assert/strict";
import { test } from "node:test";
import { gatewayError, httpStatus, Status } from "@keymanager/core";

test("WSO2's gateway error body, HTTP status and RFC 6750 challenge per code", () => {
  const invalid = gatewayError(900901);
  assert.equal(invalid.status, 401);
  assert.equal(invalid.headers["www-authenticate"], 'Bearer error="invalid_token"');
  assert.equal(invalid.headers["content-type"], "application/json; charset=utf-8");
  assert.deepEqual(invalid.body, { code: 900901, message: "Invalid Credentials", description: "Make sure you have provided the correct security credentials" });

  const missing = gatewayError(900902);
  assert.equal(missing.status, 401);
  assert.equal(missing.headers["www-authenticate"], 'Bearer error="invalid_token"');
  assert.equal(missing.body.message, "Missing Credentials");

  const scope = gatewayError(900910, "needs scope read");
  assert.equal(scope.status, 403);
  assert.equal(scope.headers["www-authenticate"], 'Bearer error="insufficient_scope"');
  assert.deepEqual(scope.body, {
    code: 900910,
    message: "The access token does not allow you to access the requested resource",
    description: "needs scope read",
  });

  const expected: [number, number, string][] = [
    [900905, 403, "Incorrect Access Token Type is provided"],
    [900906, 403, "No matching resource found in the API for the given request"],
    [900907, 403, "The requested API is temporarily blocked"],
    [900908, 403, "Resource forbidden"],
    [900909, 403, "The subscription to the API is inactive"],
    [900912, 503, "Key Manager not available"],
    [900900, 500, "Unclassified Authentication Failure"],
  ];
  for (const [code, status, message] of expected) {
    const e = gatewayError(code);
    assert.deepEqual([e.status, e.body.code, e.body.message], [status, code, message], `${code}`);
    assert.equal(e.headers["www-authenticate"], undefined);
    assert.ok(e.body.description.length > 0);
  }
  for (const s of Object.values(Status)) assert.ok(httpStatus(s.code) >= 200, s.name);
  assert.equal(httpStatus(0), 200);
  assert.equal(gatewayError(123).status, 500);
});
