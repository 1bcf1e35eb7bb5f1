import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type ApiResource, type HttpVerb, parseTemplate, pathSegments, ResourceTable } from "@keymanager/core";

function resource(spec: string): ApiResource {
  const space = spec.indexOf(" ");
  const verb = spec.slice(0, space) as HttpVerb;
  const uriTemplate = spec.slice(space + 1);
  return { uriTemplate, httpVerb: verb, authLevel: "ANY", scopes: [], throttlingTier: "Unlimited" };
}

function table(...specs: string[]): ResourceTable {
  return new ResourceTable(specs.map(resource));
}

/** [verb, path, expected template or undefined] */
type Case = [string, string, string | undefined];

function check(t: ResourceTable, cases: Case[]): void {
  for (const [verb, path, expected] of cases) {
    assert.equal(t.match(verb, path)?.uriTemplate, expected, `${verb} ${path}`);
  }
}

describe("URI template matching", () => {
  test("the pizza shack: literal over variable over wildcard, per verb", () => {
    const t = table("GET /menu", "GET /order/{orderId}", "GET /order/special", "GET /order/{id}/items/*", "POST /order", "GET /*", "DELETE /order/{orderId}");
    check(t, [
      ["GET", "/menu", "/menu"],
      ["GET", "/menu/", "/menu"],
      ["GET", "/menu?lang=en&x=/order/1", "/menu"],
      ["GET", "/menu#top", "/menu"],
      ["GET", "/order/123", "/order/{orderId}"],
      ["GET", "/order/special", "/order/special"],
      ["GET", "/order/123/items", "/order/{id}/items/*"],
      ["GET", "/order/123/items/", "/order/{id}/items/*"],
      ["GET", "/order/123/items/4/detail", "/order/{id}/items/*"],
      ["GET", "/order/123/other", "/*"],
      ["GET", "/order", "/*"],
      ["GET", "/", "/*"],
      ["GET", "", undefined],
      ["get", "/menu", "/menu"],
      ["POST", "/order", "/order"],
      ["POST", "/order/1", undefined],
      ["POST", "/menu", undefined],
      ["DELETE", "/order/9", "/order/{orderId}"],
      ["PUT", "/order/9", undefined],
      ["PATCH", "/", undefined],
    ]);
  });

  test("wildcards: '/*' and '/{+path}' match the rest, even nothing; '*' inside matches one segment", () => {
    check(table("GET /a/*"), [
      ["GET", "/a", "/a/*"],
      ["GET", "/a/", "/a/*"],
      ["GET", "/a/b/c/d", "/a/*"],
      ["GET", "/ab", undefined],
      ["GET", "/b/a", undefined],
    ]);
    check(table("GET /{+path}"), [
      ["GET", "/", "/{+path}"],
      ["GET", "/x/y%2Fz/w", "/{+path}"],
    ]);
    check(table("GET /a/*/c"), [
      ["GET", "/a/b/c", "/a/*/c"],
      ["GET", "/a/b/b/c", undefined],
      ["GET", "/a//c", undefined],
    ]);
    // An exact end beats a wildcard matching nothing; a variable beats a wildcard.
    check(table("GET /a/*", "GET /a", "GET /a/{x}"), [
      ["GET", "/a", "/a"],
      ["GET", "/a/b", "/a/{x}"],
      ["GET", "/a/b/c", "/a/*"],
    ]);
    // Equally specific templates: the first in the list.
    check(table("GET /{+rest}", "GET /*"), [["GET", "/q", "/{+rest}"]]);
    check(table("GET /*", "GET /{+rest}"), [["GET", "/q", "/*"]]);
    check(table("GET /o/{a}", "GET /o/{b}"), [["GET", "/o/1", "/o/{a}"]]);
  });

  test("the first difference from the left decides, and a dead end falls back to the next branch", () => {
    const t = table("GET /a/{x}/c", "GET /{y}/b/c", "GET /a/b/{z}", "GET /a/{p}/{q}/d");
    check(t, [
      ["GET", "/a/b/c", "/a/b/{z}"],
      ["GET", "/a/q/c", "/a/{x}/c"],
      ["GET", "/z/b/c", "/{y}/b/c"],
      ["GET", "/a/b/x/d", "/a/{p}/{q}/d"],
      ["GET", "/a/b/x/e", undefined],
    ]);
  });

  test("mixed segments: literal text around variables; more literal text wins; under a literal, over a variable", () => {
    const t = table("GET /files/{name}", "GET /files/{name}.json", "GET /files/{name}.{ext}", "GET /files/index.json", "GET /files/v{major}.{minor}.json");
    check(t, [
      ["GET", "/files/index.json", "/files/index.json"],
      ["GET", "/files/a.json", "/files/{name}.json"],
      ["GET", "/files/a.b.json", "/files/{name}.json"],
      ["GET", "/files/v1.2.json", "/files/v{major}.{minor}.json"],
      ["GET", "/files/a.xml", "/files/{name}.{ext}"],
      ["GET", "/files/readme", "/files/{name}"],
      // "{name}" needs a character before the ".": only the plain variable is left.
      ["GET", "/files/.json", "/files/{name}"],
    ]);
    check(table("GET /x/{a}-{b}"), [
      ["GET", "/x/1-2", "/x/{a}-{b}"],
      ["GET", "/x/1-2-3", "/x/{a}-{b}"],
      ["GET", "/x/-2", undefined],
      ["GET", "/x/1-", undefined],
    ]);
  });

  test("percent-encoding: segments decode after the split; '.' and '..' segments and bad escapes match nothing", () => {
    const t = table("GET /a b/{id}", "GET /caf\u00e9", "GET /*");
    check(t, [
      ["GET", "/a%20b/1", "/a b/{id}"],
      ["GET", "/caf%C3%A9", "/caf\u00e9"],
      ["GET", "/%61%20b/x%2Fy", "/a b/{id}"],
      ["GET", "/x/../a%20b/1", undefined],
      ["GET", "/x/%2e%2E/y", undefined],
      ["GET", "/./menu", undefined],
      ["GET", "/bad%zzescape", undefined],
      ["GET", "/bad%C3", undefined],
      ["GET", "no-leading-slash", undefined],
    ]);
    check(table("GET /o/{id}"), [
      ["GET", "/o/a%2Fb", "/o/{id}"],
      ["GET", "/o/a/b", undefined],
      ["GET", "/o//", undefined],
    ]);
  });

  test("empty segments match only wildcards; case counts", () => {
    check(table("GET /a/{x}/c", "GET /Menu"), [
      ["GET", "/a//c", undefined],
      ["GET", "/menu", undefined],
      ["GET", "/Menu", "/Menu"],
    ]);
    check(table("GET /a/*"), [["GET", "/a//x", "/a/*"]]);
  });

  test("query variables in a template are not part of its path; trailing '/' ignored", () => {
    check(table("GET /search{?q,lang}", "GET /list?{page}", "GET /items/"), [
      ["GET", "/search?q=1", "/search{?q,lang}"],
      ["GET", "/list", "/list?{page}"],
      ["GET", "/items", "/items/"],
    ]);
  });

  test("templates that cannot be parsed never match a path, but are still found by their text", () => {
    for (const bad of ["/a/{+rest}/b", "/a/{x", "/a/x}", "/a/{}", "relative", "/a/{x}{y}}"]) {
      assert.equal(parseTemplate(bad), undefined, bad);
    }
    const t = table("GET /a/{x", "GET /a/{+rest}/b");
    assert.equal(t.match("GET", "/a/{x"), undefined);
    assert.equal(t.match("GET", "/a/q/b"), undefined);
    assert.equal(t.find("GET", "/a/{x")?.uriTemplate, "/a/{x");
    assert.equal(t.find("get", "/a/{+rest}/b")?.uriTemplate, "/a/{+rest}/b");
    assert.equal(t.find("POST", "/a/{x"), undefined);
  });

  test("a hostile path against mixed segments costs at most path length times template length", () => {
    const t = table("GET /x/{a}-{b}-{c}-{d}z");
    const path = `/x/${"-".repeat(20_000)}`;
    const started = process.hrtime.bigint();
    assert.equal(t.match("GET", path), undefined);
    // Linear (well under a millisecond); a regular expression with four lazy groups takes seconds on 300 characters.
    assert.ok(process.hrtime.bigint() - started < 2_000_000_000n);
  });

  test("pathSegments: split, decode, refuse", () => {
    assert.deepEqual(pathSegments("/"), []);
    assert.deepEqual(pathSegments("/a/b/"), ["a", "b"]);
    assert.deepEqual(pathSegments("/a//b"), ["a", "", "b"]);
    assert.deepEqual(pathSegments("/a%2Fb?c=/d"), ["a/b"]);
    assert.equal(pathSegments("/a/%2e"), undefined);
    assert.equal(pathSegments(""), undefined);
  });
});
