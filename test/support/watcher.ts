import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, ConnectError } from "@connectrpc/connect";
import type {
  GatewayApi,
  GatewayEntity,
  GatewayExternalKeyManager,
  GatewayExternalKeyManagers,
  GatewayKeyMapping,
  GatewayScope,
  GatewaySubscription,
  Jwks,
  RevokedToken,
  TokenRevocation,
  GatewaySyncService,
  WatchEvent,
  WatchRequestSchema,
  WatchResponse,
  WatchSnapshotChunk,
} from "../../gen/keymanager/v1/gateway_sync_service_pb.js";

/** A Watch stream read in the background, its messages kept in order. */
export class Watcher {
  readonly messages: WatchResponse[] = [];
  error: ConnectError | undefined;
  ended = false;
  readonly done: Promise<void>;
  private readonly abort = new AbortController();
  private waiters: Array<() => void> = [];

  constructor(client: Client<typeof GatewaySyncService>, request: MessageInitShape<typeof WatchRequestSchema> = {}) {
    this.done = (async () => {
      try {
        for await (const m of client.watch(request, { signal: this.abort.signal })) {
          this.messages.push(m);
          this.notify();
        }
      } catch (err) {
        if (!this.abort.signal.aborted) this.error = ConnectError.from(err);
      } finally {
        this.ended = true;
        this.notify();
      }
    })();
  }

  /** Resolves once `check` holds for the messages so far; fails after `timeoutMs` (generous: a loaded machine). */
  async until(what: string, check: (w: Watcher) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this)) {
      if (this.ended) throw new Error(`${what}: the stream ended (${this.error?.message ?? "OK"}) first; ${this.messages.length} messages`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${timeoutMs} ms; ${this.messages.length} messages`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The chunks of the snapshots so far, in order. */
  chunks(): WatchSnapshotChunk[] {
    return this.messages.flatMap((m) => (m.message.case === "snapshotChunk" ? [m.message.value] : []));
  }

  /** The entities of the first complete snapshot (undefined until its last chunk came). */
  snapshot(): { version: bigint; entities: GatewayEntity[] } | undefined {
    const chunks = this.chunks();
    const last = chunks.findIndex((c) => c.lastChunk);
    if (last < 0) return undefined;
    return { version: chunks[0]?.version ?? 0n, entities: chunks.slice(0, last + 1).flatMap((c) => c.entities) };
  }

  events(): WatchEvent[] {
    return this.messages.flatMap((m) => (m.message.case === "event" ? [m.message.value] : []));
  }

  /** The version the gateway would resume from: the last event's, heartbeat's or snapshot's. */
  lastVersion(): bigint {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i]?.message;
      if (m?.case === "event" || m?.case === "heartbeat" || m?.case === "snapshotChunk") return m.value.version;
    }
    return 0n;
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** The message each kind of entity holds. */
interface Entities {
  api: GatewayApi;
  keyMapping: GatewayKeyMapping;
  subscription: GatewaySubscription;
  signingKeys: Jwks;
  externalKeyManager: GatewayExternalKeyManager;
  externalKeyManagers: GatewayExternalKeyManagers;
  revokedToken: RevokedToken;
  tokenRevocation: TokenRevocation;
  scope: GatewayScope;
}
type Kind = keyof Entities;
export type EntityOf<K extends Kind> = Entities[K];

/** An event's upsert of `kind`, or undefined. */
export function upserted<K extends Kind>(event: WatchEvent, kind: K): EntityOf<K> | undefined {
  if (event.change.case !== "upsert") return undefined;
  const entity = event.change.value.entity;
  return entity.case === kind ? (entity.value as unknown as EntityOf<K>) : undefined;
}

export function entitiesOf<K extends Kind>(entities: readonly GatewayEntity[], kind: K): Array<EntityOf<K>> {
  return entities.flatMap((e) => (e.entity.case === kind ? [e.entity.value as unknown as EntityOf<K>] : []));
}
