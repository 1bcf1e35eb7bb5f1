// Properties of URI template matching, checked on random templates and paths (fast-check),
// against an oracle written independently of the matcher: each template matched alone, segment
// by segment, then the most specific by comparing ranks position by position.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type ApiResource, ResourceTable } from "@keymanager/core";
import fc from "fast-check";

type SegmentSpec = { kind: "literal"; text: string } | { kind: "variable"; name: string } | { kind: "mixed"; prefix: string; suffix: string };
interface TemplateSpec {
  segments: SegmentSpec[];
  wildcard: "" | "*" | "{+rest}";
}

// A small alphabet, so that templates often compete for the same paths.
const literalText = fc.stringMatching(/^[ab][abc]{0,1}$/);
const segmentSpec: fc.Arbitrary<SegmentSpec> = fc.oneof(
  { weight: 3, arbitrary: literalText.map((text) => ({ kind: "literal" as const, text })) },
  { weight: 2, arbitrary: fc.constantFrom("id", "x", "orderId").map((name) => ({ kind: "variable" as const, name })) },
  {
    weight: 1,
    arbitrary: fc
      .record({ prefix: fc.constantFrom("", "v", "a"), suffix: fc.constantFrom("", ".json", "b") })
      .filter((m) => m.prefix + m.suffix !== "")
      .map((m) => ({ kind: "mixed" as const, ...m })),
  },
);
const templateSpec: fc.Arbitrary<TemplateSpec> = fc.record({
  segments: fc.array(segmentSpec, { maxLength: 4 }),
  wildcard: fc.constantFrom("" as const, "" as const, "*" as const, "{+rest}" as const),
});

function templateText(t: TemplateSpec): string {
  const parts = t.segments.map((s) => (s.kind === "literal" ? s.text : s.kind === "variable" ? `{${s.name}}` : `${s.prefix}{v}${s.suffix}`));
  if (t.wildcard) parts.push(t.wildcard);
  return `/${parts.join("/")}`;
}

// Values a variable or wildcard takes: characters that need encoding included ("/" inside a segment).
const value = fc.stringMatching(/^[abc/ %é]{1,4}$/).filter((v) => v !== "." && v !== "..");

/** Decoded segments of a path built from the template. */
function segmentsFrom(t: TemplateSpec): fc.Arbitrary<string[]> {
  const fixed = t.segments.map((s) =>
    s.kind === "literal" ? fc.constant(s.text) : s.kind === "variable" ? value : value.map((v) => `${s.prefix}${v}${s.suffix}`),
  );
  const rest = t.wildcard ? fc.array(value, { maxLength: 3 }) : fc.constant([] as string[]);
  return fc.tuple(fc.tuple(...fixed), rest).map(([a, b]) => [...a, ...b]);
}

/** A raw path for decoded segments: each encoded one way or another, maybe a trailing "/" and a query. */
function rawPath(segments: string[]): fc.Arbitrary<string> {
  const encoded = segments.map((s) => fc.constantFrom(encodeURIComponent(s), encodeAll(s)));
  return fc
    .tuple(fc.tuple(...encoded), fc.boolean(), fc.constantFrom("", "?q=1", "?next=/a/b#frag"))
    .map(([parts, slash, query]) => `/${parts.join("/")}${slash && parts.length > 0 ? "/" : ""}${query}`);
}

function encodeAll(s: string): string {
  return [...new TextEncoder().encode(s)].map((b) => `%${b.toString(16).padStart(2, "0").toUpperCase()}`).join("");
}

function matchesAlone(t: TemplateSpec, path: string[]): boolean {
  if (t.wildcard ? path.length < t.segments.length : path.length !== t.segments.length) return false;
  return t.segments.every((s, i) => {
    const p = path[i] as string;
    if (s.kind === "literal") return p === s.text;
    if (s.kind === "variable") return p !== "";
    return p.length > s.prefix.length + s.suffix.length && p.startsWith(s.prefix) && p.endsWith(s.suffix);
  });
}

/** Positive when `a` is more specific than `b` for a path of `n` segments both match. */
function compare(a: TemplateSpec, b: TemplateSpec, n: number): number {
  for (let i = 0; i <= n; i++) {
    const [ra, rb] = [rank(a, i), rank(b, i)];
    for (let k = 0; k < ra.length; k++) {
      const [x, y] = [ra[k] as number | string, rb[k] as number | string];
      if (x !== y) return typeof x === "number" ? x - (y as number) : x < y ? 1 : -1;
    }
  }
  return 0;
}

/** At position i: literal > mixed (more literal text, then the smaller text) > variable > wildcard; at the end, exact > wildcard. */
function rank(t: TemplateSpec, i: number): [number, number, string] {
  const s = t.segments[i];
  if (!s) return i === t.segments.length && !t.wildcard ? [1, 0, ""] : [0, 0, ""];
  if (s.kind === "literal") return [4, 0, ""];
  if (s.kind === "mixed") return [3, s.prefix.length + s.suffix.length, `${s.prefix}{v}${s.suffix}`];
  return [2, 0, ""];
}

function oracle(templates: TemplateSpec[], path: string[]): number | undefined {
  let best: number | undefined;
  templates.forEach((t, i) => {
    if (!matchesAlone(t, path)) return;
    if (best === undefined || compare(t, templates[best] as TemplateSpec, path.length) > 0) best = i;
  });
  return best;
}

function resources(templates: TemplateSpec[]): ApiResource[] {
  return templates.map((t) => ({ uriTemplate: templateText(t), httpVerb: "GET", authLevel: "ANY", scopes: [], throttlingTier: "" }));
}

describe("URI template matching, properties", () => {
  test("a path built from a template always matches it", () => {
    const cases = templateSpec.chain((t) => fc.tuple(fc.constant(t), segmentsFrom(t).chain(rawPath)));
    fc.assert(
      fc.property(cases, ([t, path]) => {
        const table = new ResourceTable(resources([t]));
        assert.equal(table.match("GET", path)?.uriTemplate, templateText(t), path);
        assert.equal(table.match("POST", path), undefined);
      }),
      { numRuns: 2000 },
    );
  });

  test("among many templates, the match is the most specific one that matches (first listed on a tie)", () => {
    const cases = fc.array(templateSpec, { minLength: 1, maxLength: 8 }).chain((ts) =>
      fc.tuple(
        fc.constant(ts),
        fc.nat(ts.length - 1).chain((i) => segmentsFrom(ts[i] as TemplateSpec).chain((s) => fc.tuple(fc.constant(s), rawPath(s)))),
      ),
    );
    fc.assert(
      fc.property(cases, ([templates, [segments, path]]) => {
        const expected = oracle(templates, segments);
        const found = new ResourceTable(resources(templates)).match("GET", path);
        assert.notEqual(expected, undefined);
        assert.equal(found, resources(templates)[expected as number] && found, path);
        assert.equal(found?.uriTemplate, templateText(templates[expected as number] as TemplateSpec), `${path} among ${templates.map(templateText).join(" ")}`);
      }),
      { numRuns: 3000 },
    );
  });

  test("a literal beats a variable in its place, whatever the order of registration", () => {
    const cases = templateSpec
      .filter((t) => t.segments.some((s) => s.kind === "literal"))
      .chain((t) => fc.tuple(fc.constant(t), fc.nat(t.segments.length - 1), segmentsFrom(t).chain(rawPath), fc.boolean()));
    fc.assert(
      fc.property(cases, ([t, at, path, literalFirst]) => {
        const index = t.segments.findIndex((s, i) => i >= at && s.kind === "literal");
        const i = index === -1 ? t.segments.findIndex((s) => s.kind === "literal") : index;
        const variable: TemplateSpec = { ...t, segments: t.segments.map((s, k) => (k === i ? { kind: "variable", name: "v" } : s)) };
        const listed = literalFirst ? [t, variable] : [variable, t];
        assert.equal(new ResourceTable(resources(listed)).match("GET", path)?.uriTemplate, templateText(t));
      }),
      { numRuns: 1000 },
    );
  });

  test("a path that matches no template alone matches nothing together", () => {
    const cases = fc.tuple(fc.array(templateSpec, { maxLength: 6 }), fc.array(value, { maxLength: 5 }).chain(rawPath));
    fc.assert(
      fc.property(cases, ([templates, path]) => {
        const found = new ResourceTable(resources(templates)).match("GET", path);
        const alone = templates.filter((t) => new ResourceTable(resources([t])).match("GET", path));
        if (alone.length === 0) assert.equal(found, undefined);
        else assert.ok(found && alone.some((t) => templateText(t) === found.uriTemplate));
      }),
      { numRuns: 2000 },
    );
  });
});
