import { z } from "zod";
import type { Change } from "../domain/change-events.js";

/** Below PostgreSQL's 8000-byte NOTIFY payload limit, with room to spare. */
export const MAX_PAYLOAD_BYTES = 7500;

/** One message between replicas: who sent it (its own are ignored) and what changed there. */
export interface ChangeMessage {
  replica: string;
  changes: Change[];
  /** When the sender sent it (epoch ms, its clock): the receiver's lag metric. Older senders leave it out. */
  sentAt?: number;
}

const id = z.string().max(2000);
const changeSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("token"), tokenHash: id }),
  z.object({ kind: z.literal("tokens"), familyId: id.optional(), endUser: id.optional(), consumerKey: id.optional() }),
  z.object({ kind: z.literal("application"), consumerKey: id }),
  z.object({ kind: z.literal("api"), apiId: id }),
  z.object({ kind: z.literal("resources"), apiId: id }),
  z.object({ kind: z.literal("subscription"), applicationId: id, apiId: id }),
  z.object({ kind: z.literal("signing-keys") }),
  z.object({ kind: z.literal("all") }),
]);
const messageSchema = z.object({ replica: id, changes: z.array(changeSchema), sentAt: z.number().optional() });

const ALL = JSON.stringify({ kind: "all" } satisfies Change);

/**
 * The changes as JSON messages of at most MAX_PAYLOAD_BYTES each, duplicates sent once. A change
 * too large for a message of its own (none is, in practice) goes as "all": peers drop everything.
 */
export function encodeChanges(replica: string, changes: readonly Change[], sentAt = Date.now()): string[] {
  const head = `{"replica":${JSON.stringify(replica)},"sentAt":${sentAt},"changes":[`;
  const tail = "]}";
  const room = MAX_PAYLOAD_BYTES - Buffer.byteLength(head) - tail.length;
  const parts = [...new Set(changes.map((c) => JSON.stringify(c)))].map((p) => (Buffer.byteLength(p) > room ? ALL : p));
  if (parts.includes(ALL)) return [head + ALL + tail];
  const payloads: string[] = [];
  let batch: string[] = [];
  let bytes = 0;
  for (const part of parts) {
    const size = Buffer.byteLength(part) + (batch.length > 0 ? 1 : 0);
    if (batch.length > 0 && bytes + size > room) {
      payloads.push(head + batch.join(",") + tail);
      batch = [];
      bytes = 0;
    }
    bytes += Buffer.byteLength(part) + (batch.length > 0 ? 1 : 0);
    batch.push(part);
  }
  if (batch.length > 0) payloads.push(head + batch.join(",") + tail);
  return payloads;
}

/** The message in a payload, or undefined when it is not one this version can read. */
export function decodeChanges(payload: string): ChangeMessage | undefined {
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return undefined;
  }
  const parsed = messageSchema.safeParse(json);
  return parsed.success ? (parsed.data as ChangeMessage) : undefined;
}
