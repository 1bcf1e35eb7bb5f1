/** Conversions between domain values and the dialect-neutral column types of the migrations. */

export function toJson(value: unknown): string {
  return JSON.stringify(value);
}

export function fromJson<T>(text: unknown): T {
  return JSON.parse(String(text)) as T;
}

/** BIGINT epoch milliseconds; PostgreSQL returns them as strings. */
export function toDate(value: unknown): Date {
  return new Date(Number(value));
}

export function toMillis(date: Date): number {
  return date.getTime();
}
