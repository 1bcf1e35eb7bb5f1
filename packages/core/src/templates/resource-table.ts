import type { ApiResource } from "../model/api.js";
import { pathSegments } from "./request-path.js";
import { mixedMatches, parseTemplate, type Segment } from "./uri-template.js";

/** A node of one verb's template tree: one level per path segment. */
interface Node {
  literals?: Map<string, Node>;
  /** Most literal text first, then by template text, so the order never depends on registration. */
  mixed?: { chunks: string[]; literalLength: number; text: string; node: Node }[];
  variable?: Node;
  /** A template that ends here. */
  exact?: ApiResource;
  /** A template that ends here with "*" or "{+name}": any rest of the path, even none. */
  wildcard?: ApiResource;
}

/**
 * An API's resources, compiled once for the per-request look-ups: by the template a gateway
 * already matched (exact text), or by the request path (the most specific template wins).
 *
 * Most specific: compared segment by segment from the left, at the first difference a literal
 * beats a mixed segment ("{name}.json"), which beats a variable, which beats a wildcard; a path
 * that ends where a template ends beats a wildcard that matches nothing ("/order" over
 * "/order/*"). Among mixed segments, more literal characters win, then the template text
 * (code-unit order). Templates of the same shape ("/order/{id}", "/order/{orderId}"): the first
 * in the list. Verbs compare in upper case; the path after the API's context and version is
 * matched (the query ignored; see request-path.ts for decoding and what is refused).
 */
export class ResourceTable {
  private readonly byTemplate = new Map<string, ApiResource>();
  private trees: Map<string, Node> | undefined;

  constructor(readonly resources: readonly ApiResource[]) {
    for (const resource of resources) {
      const key = templateKey(resource.httpVerb, resource.uriTemplate);
      if (!this.byTemplate.has(key)) this.byTemplate.set(key, resource);
    }
  }

  get size(): number {
    return this.resources.length;
  }

  /** The resource registered with exactly this verb and template. */
  find(verb: string, uriTemplate: string): ApiResource | undefined {
    return this.byTemplate.get(templateKey(verb.toUpperCase(), uriTemplate));
  }

  /** The most specific resource of `verb` matching `path` (relative to the API, query allowed). */
  match(verb: string, path: string): ApiResource | undefined {
    const segments = pathSegments(path);
    return segments && this.matchSegments(verb, segments);
  }

  /** As `match`, for a path already split and decoded (pathSegments). */
  matchSegments(verb: string, segments: readonly string[], from = 0): ApiResource | undefined {
    const root = this.tree(verb.toUpperCase());
    return root && matchNode(root, segments, from);
  }

  private tree(verb: string): Node | undefined {
    this.trees ??= buildTrees(this.resources);
    return this.trees.get(verb);
  }
}

function templateKey(verb: string, uriTemplate: string): string {
  return `${verb} ${uriTemplate}`;
}

function buildTrees(resources: readonly ApiResource[]): Map<string, Node> {
  const trees = new Map<string, Node>();
  for (const resource of resources) {
    const parsed = parseTemplate(resource.uriTemplate);
    if (!parsed) continue;
    const verb = resource.httpVerb.toUpperCase();
    let node = trees.get(verb);
    if (!node) {
      node = {};
      trees.set(verb, node);
    }
    for (const segment of parsed.segments) node = child(node, segment);
    if (parsed.wildcard) node.wildcard ??= resource;
    else node.exact ??= resource;
  }
  return trees;
}

function child(node: Node, segment: Segment): Node {
  switch (segment.kind) {
    case "literal": {
      node.literals ??= new Map();
      let next = node.literals.get(segment.text);
      if (!next) {
        next = {};
        node.literals.set(segment.text, next);
      }
      return next;
    }
    case "variable":
      node.variable ??= {};
      return node.variable;
    case "mixed": {
      node.mixed ??= [];
      let entry = node.mixed.find((m) => m.text === segment.text);
      if (!entry) {
        entry = { ...segment, node: {} };
        node.mixed.push(entry);
        node.mixed.sort((a, b) => b.literalLength - a.literalLength || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
      }
      return entry.node;
    }
  }
}

/** Depth first, most specific branch first: the first full match is the most specific one. */
function matchNode(node: Node, segments: readonly string[], i: number): ApiResource | undefined {
  if (i === segments.length) return node.exact ?? node.wildcard;
  const segment = segments[i] as string;
  const literal = node.literals?.get(segment);
  if (literal) {
    const found = matchNode(literal, segments, i + 1);
    if (found) return found;
  }
  if (node.mixed) {
    for (const m of node.mixed) {
      if (!mixedMatches(m.chunks, segment)) continue;
      const found = matchNode(m.node, segments, i + 1);
      if (found) return found;
    }
  }
  if (node.variable && segment !== "") {
    const found = matchNode(node.variable, segments, i + 1);
    if (found) return found;
  }
  return node.wildcard;
}
