// km's answers for people (without --json): YAML-like, one field a line, nested indented.

function scalar(value: unknown): string {
  if (typeof value === "string") return value === "" ? '""' : value;
  return String(value);
}

function lines(value: unknown, indent: string): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${indent}[]`];
    return value.flatMap((item) => {
      if (item && typeof item === "object") {
        const [firstLine, ...others] = lines(item, `${indent}  `);
        return [`${indent}- ${firstLine?.trimStart() ?? ""}`, ...others];
      }
      return [`${indent}- ${scalar(item)}`];
    });
  }
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([key, v]) => {
      if (v && typeof v === "object" && (!Array.isArray(v) || v.length > 0)) return [`${indent}${key}:`, ...lines(v, `${indent}  `)];
      return [`${indent}${key}: ${Array.isArray(v) ? "[]" : scalar(v)}`];
    });
  }
  return [`${indent}${scalar(value)}`];
}

/** An answer for a terminal; "" for an empty one (a delete's). */
export function human(value: unknown): string {
  if (value === undefined || (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0)) return "";
  return lines(value, "").join("\n");
}
