/**
 * A request's path as matching sees it: the query and fragment cut off, split on "/", each
 * segment percent-decoded (so an encoded "%2F" stays inside its segment), a trailing "/" ignored.
 *
 * Refused (undefined), so that no resource matches and the gateway answers 900906: a path that does
 * not start with "/", a segment that does not decode (bad escapes, invalid UTF-8), and "." or ".."
 * segments, raw or encoded: an upstream that resolves them would serve another resource than the
 * one checked.
 */
export function pathSegments(path: string): string[] | undefined {
  const bare = withoutQuery(path);
  if (!bare.startsWith("/")) return undefined;
  if (bare === "/") return [];
  const raw = bare.slice(1).split("/");
  if (raw[raw.length - 1] === "") raw.pop();
  const segments: string[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const segment = decodeSegment(raw[i] as string);
    if (segment === undefined || segment === "." || segment === "..") return undefined;
    segments[i] = segment;
  }
  return segments;
}

function decodeSegment(segment: string): string | undefined {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** The path without its query and fragment: all that matching looks at. */
export function withoutQuery(path: string): string {
  const end = path.search(/[?#]/);
  return end === -1 ? path : path.slice(0, end);
}
