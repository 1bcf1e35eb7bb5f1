import type { Api } from "../model/api.js";
import { pathSegments } from "./request-path.js";

/** Contexts compare without a trailing slash: "/pizzashack/" is "/pizzashack". */
export function normaliseContext(context: string): string {
  return context.length > 1 ? context.replace(/\/+$/, "") : context;
}

function contextSegments(context: string): string[] {
  const normal = normaliseContext(context);
  return normal === "/" ? [] : normal.slice(1).split("/");
}

/**
 * Where the resource path starts in a request path's segments (pathSegments) addressed to the
 * API with this context and version: after the context, and after the version when the next
 * segment is the version ("/pizzashack/1.0.0/menu" and "/pizzashack/menu" both give "/menu" for
 * context "/pizzashack", version "1.0.0"). Undefined when the path is not under the context.
 */
export function resourceStart(segments: readonly string[], context: string, version: string): number | undefined {
  const prefix = contextSegments(context);
  if (segments.length < prefix.length) return undefined;
  for (let i = 0; i < prefix.length; i++) if (segments[i] !== prefix[i]) return undefined;
  return segments[prefix.length] === version && version !== "" ? prefix.length + 1 : prefix.length;
}

export interface ApiMatch {
  api: Api;
  /** The request path's decoded segments (pathSegments). */
  segments: string[];
  /** Index of the first segment of the resource path, after the context and version. */
  resourceStart: number;
}

/**
 * APIs by context and version, for a gateway that sees only the request path: the API is the one
 * with the longest context the path starts with (whole segments) that has the version, given
 * explicitly (a header, Envoy's context_extensions) or else taken from the segment after the
 * context. Kept current with `set` and `delete` as the gateway's copy changes.
 */
export class ApiIndex {
  private readonly byContext = new Map<string, Map<string, Api>>();
  private readonly byId = new Map<string, Api>();
  /** Segments of the deepest context ever added: how far a path's prefixes are tried. */
  private depth = 0;

  constructor(apis: Iterable<Api> = []) {
    for (const api of apis) this.set(api);
  }

  get size(): number {
    return this.byId.size;
  }

  get(context: string, version: string): Api | undefined {
    return this.byContext.get(normaliseContext(context))?.get(version);
  }

  set(api: Api): void {
    this.delete(api.apiId);
    const context = normaliseContext(api.context);
    let versions = this.byContext.get(context);
    if (!versions) {
      versions = new Map();
      this.byContext.set(context, versions);
    }
    versions.set(api.version, api);
    this.byId.set(api.apiId, api);
    this.depth = Math.max(this.depth, contextSegments(context).length);
  }

  delete(apiId: string): void {
    const old = this.byId.get(apiId);
    if (!old) return;
    this.byId.delete(apiId);
    const context = normaliseContext(old.context);
    const versions = this.byContext.get(context);
    if (versions?.get(old.version) === old) versions.delete(old.version);
    if (versions?.size === 0) this.byContext.delete(context);
  }

  /** The API `path` (raw, query allowed) addresses; undefined when none does or the path is refused. */
  find(path: string, version?: string): ApiMatch | undefined {
    const segments = pathSegments(path);
    if (!segments) return undefined;
    // A decoded "/" ("%2F") is inside a segment: no context can span it.
    const slash = segments.findIndex((s) => s.includes("/"));
    const deepest = Math.min(this.depth, slash === -1 ? segments.length : slash);
    for (let n = deepest; n >= 0; n--) {
      const versions = this.byContext.get(n === 0 ? "/" : `/${segments.slice(0, n).join("/")}`);
      if (!versions) continue;
      const wanted = version ?? segments[n];
      const api = wanted === undefined ? undefined : versions.get(wanted);
      if (!api) continue;
      const start = segments[n] === api.version ? n + 1 : n;
      return { api, segments, resourceStart: start };
    }
    return undefined;
  }
}
