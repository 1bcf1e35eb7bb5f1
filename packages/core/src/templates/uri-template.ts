/**
 * WSO2 resource URI templates, parsed once into segments a path is matched against.
 *
 * A template is relative to its API's context and version: "/order/{orderId}", "/menu", "/*",
 * "/{+path}", "/order/{id}/items/*", "/files/{name}.json". Each "/"-separated segment is one of
 * - a literal ("order"): the path's segment, percent-decoded, equals it (case-sensitive);
 * - a mixed segment ("{name}.json", "v{major}"): literal text around variables, each variable at
 *   least one character;
 * - a variable ("{orderId}"): any one non-empty segment;
 * - a wildcard, last segment only ("*" or "{+path}"): zero or more segments, so "/order/*" also
 *   matches "/order". A "*" elsewhere matches any one segment, like a variable.
 * Anything from "?" or "{?" on (query variables) is not part of the path and is ignored.
 * A trailing "/" is ignored ("/menu/" is "/menu"). A template that cannot be parsed (unbalanced
 * braces, "{+path}" before the last segment) never matches a path.
 */

export type Segment =
  | { kind: "literal"; text: string }
  /** `chunks`: the literal text around the variables (one more than there are variables, maybe empty). */
  | { kind: "mixed"; chunks: string[]; literalLength: number; text: string }
  | { kind: "variable" };

export interface ParsedTemplate {
  /** The segments before the final wildcard, if any. */
  segments: Segment[];
  /** Ends with "*" or "{+name}": the rest of the path, zero or more segments. */
  wildcard: boolean;
}

const VARIABLE = /^\{[A-Za-z0-9_.%-]+\}$/;
const RESERVED = /^\{\+[A-Za-z0-9_.%-]+\}$/;
const NAME = "[A-Za-z0-9_.%-]+";

/** The segments of a template; undefined when it is not a template this module can match. */
export function parseTemplate(template: string): ParsedTemplate | undefined {
  const path = stripQuery(template);
  if (!path.startsWith("/")) return undefined;
  const parts = path === "/" ? [] : path.slice(1).split("/");
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  const segments: Segment[] = [];
  for (const [i, part] of parts.entries()) {
    const last = i === parts.length - 1;
    if (last && (part === "*" || RESERVED.test(part))) return { segments, wildcard: true };
    const segment = parseSegment(part);
    if (!segment) return undefined;
    segments.push(segment);
  }
  return { segments, wildcard: false };
}

function stripQuery(template: string): string {
  const query = template.search(/\?|\{[?&]/);
  return query === -1 ? template : template.slice(0, query);
}

function parseSegment(part: string): Segment | undefined {
  if (part === "") return undefined;
  if (part === "*" || VARIABLE.test(part)) return { kind: "variable" };
  if (!part.includes("{") && !part.includes("}")) return { kind: "literal", text: part };
  // Literal text with variables inside: "{name}.json", each variable one or more characters.
  const pieces = part.split(new RegExp(`(\\{${NAME}\\})`));
  const chunks: string[] = [];
  for (const [i, piece] of pieces.entries()) {
    if (i % 2 === 1) continue;
    if (piece.includes("{") || piece.includes("}")) return undefined;
    chunks.push(piece);
  }
  return { kind: "mixed", chunks, literalLength: chunks.join("").length, text: part };
}

/**
 * Whether `text` matches a mixed segment: its literal chunks in order, with at least one
 * character for each variable between them. The first chunk is anchored at the start and the
 * last at the end; each chunk between is taken at its leftmost place (leftmost is never worse
 * for what follows), so the cost stays linear in the text, where a regular expression with
 * several lazy groups could backtrack for minutes on a hostile path.
 */
export function mixedMatches(chunks: readonly string[], text: string): boolean {
  const first = chunks[0] as string;
  const last = chunks[chunks.length - 1] as string;
  if (!text.startsWith(first)) return false;
  let at = first.length;
  for (let i = 1; i < chunks.length - 1; i++) {
    const found = text.indexOf(chunks[i] as string, at + 1);
    if (found === -1) return false;
    at = found + (chunks[i] as string).length;
  }
  return text.length - last.length >= at + 1 && text.endsWith(last);
}
