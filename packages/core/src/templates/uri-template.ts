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

export type Segment = { kind: "literal"; text: string } | { kind: "mixed"; glob: GlobToken[]; literalLength: number; text: string } | { kind: "variable" };

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
  const glob: GlobToken[] = [];
  let literalLength = 0;
  for (const piece of pieces) {
    if (VARIABLE.test(piece)) glob.push(ONE, ANY);
    else if (piece.includes("{") || piece.includes("}")) return undefined;
    else {
      for (const char of piece) glob.push(char);
      literalLength += piece.length;
    }
  }
  return { kind: "mixed", glob, literalLength, text: part };
}

/** A character to match, or one character of any kind, or any run of characters (even none). */
export type GlobToken = string | typeof ONE | typeof ANY;
const ONE = 0;
const ANY = 1;

/**
 * Whether `text` matches a mixed segment's tokens: the classic wildcard match that, on a
 * mismatch, only ever resumes at the last run-of-characters token, so its cost stays within
 * text length times pattern length (a regular expression with several lazy groups could
 * backtrack far longer on a hostile path).
 */
export function globMatches(glob: readonly GlobToken[], text: string): boolean {
  const chars = Array.from(text);
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < chars.length) {
    const token = glob[p];
    if (token === ANY) {
      star = p++;
      resume = t;
    } else if (p < glob.length && (token === ONE || token === chars[t])) {
      p++;
      t++;
    } else if (star !== -1) {
      p = star + 1;
      t = ++resume;
    } else return false;
  }
  while (glob[p] === ANY) p++;
  return p === glob.length;
}
