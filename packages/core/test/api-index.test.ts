import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type Api, ApiIndex, normaliseContext, pathSegments, resourceStart } from "@keymanager/core";

function api(apiId: string, context: string, version: string): Api {
  return { apiId, name: apiId, context, version, publisher: "p", apiTier: "" };
}

describe("finding the API of a request path", () => {
  const index = new ApiIndex([
    api("pizza-1", "/pizzashack", "1.0.0"),
    api("pizza-2", "/pizzashack", "2.0.0"),
    api("orders", "/pizzashack/orders", "v1"),
    api("tenant", "/t/example.com/shop/", "1.0"),
    api("root", "/", "v9"),
  ]);

  function found(path: string, version?: string): [string, string] | undefined {
    const m = index.find(path, version);
    return m && [m.api.apiId, `/${m.segments.slice(m.resourceStart).join("/")}`];
  }

  test("the longest context the path starts with, whole segments only; the version from the next segment", () => {
    assert.deepEqual(found("/pizzashack/1.0.0/menu"), ["pizza-1", "/menu"]);
    assert.deepEqual(found("/pizzashack/2.0.0/order/1?x=/pizzashack/orders/v1"), ["pizza-2", "/order/1"]);
    assert.deepEqual(found("/pizzashack/orders/v1/7"), ["orders", "/7"]);
    // "/pizzashack/orders" has no version "1.0.0"; "/pizzashack" has no version "orders".
    assert.deepEqual(found("/pizzashack/orders/1.0.0"), undefined);
    assert.deepEqual(found("/t/example.com/shop/1.0/cart/"), ["tenant", "/cart"]);
    assert.deepEqual(found("/pizzashackx/1.0.0/menu"), undefined);
    assert.deepEqual(found("/v9/anything"), ["root", "/anything"]);
    assert.deepEqual(found("/pizzashack/3.0.0/menu"), undefined);
  });

  test("a longer context without the version gives way to a shorter one that has it", () => {
    // "/pizzashack/orders" has no version "menu"; "/pizzashack" has no "orders" either: nothing.
    assert.equal(found("/pizzashack/orders/menu"), undefined);
    const both = new ApiIndex([api("a", "/a", "b"), api("ab", "/a/b", "1")]);
    assert.equal(both.find("/a/b/1/x")?.api.apiId, "ab");
    assert.equal(both.find("/a/b/2/x")?.api.apiId, "a");
  });

  test("an explicit version: the path may carry it after the context, or not", () => {
    assert.deepEqual(found("/pizzashack/menu", "2.0.0"), ["pizza-2", "/menu"]);
    assert.deepEqual(found("/pizzashack/2.0.0/menu", "2.0.0"), ["pizza-2", "/menu"]);
    assert.deepEqual(found("/pizzashack/menu", "7"), undefined);
  });

  test("encoded separators never join segments into a context; refused paths find nothing", () => {
    assert.equal(found("/pizzashack%2Forders/v1/x"), undefined);
    assert.deepEqual(found("/%70izzashack/1.0.0/menu"), ["pizza-1", "/menu"]);
    assert.equal(found("/pizzashack/1.0.0/../2.0.0/menu"), undefined);
    assert.equal(found("pizzashack/1.0.0"), undefined);
  });

  test("set and delete keep the index current", () => {
    const live = new ApiIndex();
    live.set(api("x", "/deep/er/still", "1"));
    assert.equal(live.find("/deep/er/still/1/r")?.api.apiId, "x");
    live.set(api("x", "/moved", "1"));
    assert.equal(live.find("/deep/er/still/1/r"), undefined);
    assert.equal(live.find("/moved/1")?.api.apiId, "x");
    assert.equal(live.get("/moved/", "1")?.apiId, "x");
    live.delete("x");
    assert.equal(live.size, 0);
    assert.equal(live.find("/moved/1"), undefined);
  });

  test("resourceStart and normaliseContext", () => {
    const segments = pathSegments("/pizzashack/1.0.0/menu") as string[];
    assert.equal(resourceStart(segments, "/pizzashack", "1.0.0"), 2);
    assert.equal(resourceStart(segments, "/pizzashack/", "2.0.0"), 1);
    assert.equal(resourceStart(segments, "/burgers", "1.0.0"), undefined);
    assert.equal(resourceStart(segments, "/", "x"), 0);
    assert.equal(normaliseContext("/a//"), "/a");
    assert.equal(normaliseContext("/"), "/");
  });
});
