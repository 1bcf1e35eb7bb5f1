import { create, type JsonObject, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  type GatewayEntity,
  GatewayEntitySchema,
  type GatewaySyncService,
  SnapshotReason,
  type WatchRequest,
  type WatchResponse,
  WatchResponseSchema,
} from "../../gen/keymanager/v1/gateway_sync_service_pb.js";
import { KeyType as PbKeyType } from "../../gen/keymanager/v1/types_pb.js";
import { normaliseContext } from "@keymanager/core";
import { Validator } from "../domain/validator.js";
import type { SyncEntity, SyncEntityKey, SyncEvent, SyncFilter } from "../sync/entities.js";
import type { GatewaySync, SnapshotReason as Reason } from "../sync/gateway-sync.js";
import type { Snapshot } from "../sync/snapshot-reader.js";
import { authLevelToPb, keyTypeFromPb, keyTypeToPb, subscriptionStateToPb, tokenTypeToPb } from "./enums.js";

type Impl = ServiceImpl<typeof GatewaySyncService>;
type EntityInit = Exclude<MessageInitShape<typeof GatewayEntitySchema>, { $typeName: string }>["entity"];

export interface ChunkSettings {
  snapshotChunkEntities: number;
  snapshotChunkBytes: number;
}

/** A watcher's api_contexts: at most this many, each at most this long. */
const MAX_CONTEXTS = 1000;
const MAX_CONTEXT_CHARS = 255;

const REASONS: Record<Reason, SnapshotReason> = {
  first: SnapshotReason.FIRST,
  "resume-too-old": SnapshotReason.RESUME_TOO_OLD,
  fresh: SnapshotReason.FRESH,
};

/**
 * keymanager.v1.GatewaySyncService: the gateways' Watch stream (sync/gateway-sync.ts), mapped to
 * messages. An event's message is made once for every watcher (so its encoding is too), and a
 * snapshot's chunks once for every watcher sharing the snapshot.
 */
export class GatewaySyncServiceImpl implements Impl {
  private readonly eventMessages = new WeakMap<SyncEvent, WatchResponse>();
  private readonly eventSizes = new WeakMap<SyncEvent, number>();
  private readonly chunks = new WeakMap<Snapshot, Map<Reason, WatchResponse[]>>();

  constructor(
    private readonly sync: GatewaySync,
    private readonly settings: () => ChunkSettings,
    /** The "iss" of this key manager's JWTs. */
    private readonly issuer: () => string,
    /** Whether gateways may verify this key manager's JWTs with its keys (else they ask the server: validate_remotely). */
    private readonly selfValidationJwt: () => boolean,
  ) {}

  /** The bytes of an event's message (GatewaySync bounds each watcher's buffer with it). */
  readonly sizeOf = (event: SyncEvent): number => {
    let size = this.eventSizes.get(event);
    if (size === undefined) {
      size = toBinary(WatchResponseSchema, this.eventMessage(event)).length;
      this.eventSizes.set(event, size);
    }
    return size;
  };

  async *watch(req: WatchRequest, ctx: HandlerContext): AsyncGenerator<WatchResponse> {
    const request = requestFromPb(req);
    for await (const out of this.sync.watch(request, ctx.signal)) {
      if (out.kind === "event") yield this.eventMessage(out.event);
      else if (out.kind === "heartbeat") {
        yield create(WatchResponseSchema, { message: { case: "heartbeat", value: { version: BigInt(out.version), serverTime: timestampFromMs(out.at) } } });
      } else yield* this.snapshotChunks(out.snapshot, out.reason);
    }
  }

  private eventMessage(event: SyncEvent): WatchResponse {
    let message = this.eventMessages.get(event);
    if (!message) {
      const change = event.upsert
        ? { case: "upsert" as const, value: this.entity(event.upsert) }
        : { case: "delete" as const, value: keyToPb(event.delete as SyncEntityKey) };
      message = create(WatchResponseSchema, {
        message: { case: "event", value: { version: BigInt(event.version), commitTime: timestampFromMs(event.at), change } },
      });
      this.eventMessages.set(event, message);
    }
    return message;
  }

  /** The snapshot in chunks bounded by entities and (encoded) bytes; an entity bigger than the bound goes alone. */
  private snapshotChunks(snapshot: Snapshot, reason: Reason): WatchResponse[] {
    let byReason = this.chunks.get(snapshot);
    if (!byReason) {
      byReason = new Map();
      this.chunks.set(snapshot, byReason);
    }
    const known = byReason.get(reason);
    if (known) return known;
    const { snapshotChunkEntities, snapshotChunkBytes } = this.settings();
    const groups: GatewayEntity[][] = [];
    let current: GatewayEntity[] = [];
    let bytes = 0;
    for (const e of snapshot.entities) {
      const entity = this.entity(e);
      // The entity's bytes inside the chunk: its own, a tag and a length prefix.
      const size = encodedSize(e, entity) + 6;
      if (current.length > 0 && (current.length >= snapshotChunkEntities || bytes + size > snapshotChunkBytes)) {
        groups.push(current);
        current = [];
        bytes = 0;
      }
      current.push(entity);
      bytes += size;
    }
    groups.push(current);
    const chunks = groups.map((entities, i) =>
      create(WatchResponseSchema, {
        message: {
          case: "snapshotChunk",
          value: { version: BigInt(snapshot.version), reason: REASONS[reason], entities, lastChunk: i === groups.length - 1 },
        },
      }),
    );
    byReason.set(reason, chunks);
    return chunks;
  }

  private entity(e: SyncEntity): GatewayEntity {
    return create(GatewayEntitySchema, { entity: this.entityCase(e) });
  }

  private entityCase(e: SyncEntity): EntityInit {
    switch (e.kind) {
      case "api": {
        const { resources, apiTier, apiId, name, context, version, publisher } = e.api;
        return {
          case: "api",
          value: {
            apiId,
            name,
            context,
            version,
            publisher,
            apiTier,
            resources: resources.map((r) => ({ ...r, authLevel: authLevelToPb(r.authLevel) })),
          },
        };
      }
      case "key-mapping": {
        const m = e.mapping;
        return {
          case: "keyMapping",
          value: {
            consumerKey: m.consumerKey,
            application: { applicationId: m.applicationId, name: m.applicationName, owner: m.subscriber, tier: m.applicationTier },
            keyType: keyTypeToPb(m.keyType),
            keyManager: m.keyManager,
            tokenType: tokenTypeToPb(m.tokenType),
          },
        };
      }
      case "subscription": {
        const s = e.subscription;
        return {
          case: "subscription",
          value: { subscriptionId: s.id, applicationId: s.applicationId, apiId: s.apiId, tier: s.tier, state: subscriptionStateToPb(s.state) },
        };
      }
      case "signing-keys":
        return { case: "signingKeys", value: { keys: e.keys as JsonObject[], issuer: this.issuer(), validateRemotely: !this.selfValidationJwt() } };
      case "external-key-manager":
        return { case: "externalKeyManager", value: { ...e.keyManager } };
      case "external-key-managers":
        return { case: "externalKeyManagers", value: { keyManagers: e.keyManagers.map((km) => ({ ...km })) } };
      case "scope":
        return { case: "scope", value: { ...e.scope } };
      case "revoked-token":
        return { case: "revokedToken", value: revokedToPb(e.token) };
      case "token-revocation": {
        const r = e.revocation;
        return {
          case: "tokenRevocation",
          value: {
            revokeTime: timestampFromMs(r.at),
            consumerKey: r.consumerKey ?? "",
            endUser: r.endUser ?? "",
            revokedTokens: r.revoked.map(revokedToPb),
            ...(r.keepUntil !== undefined && { expireTime: timestampFromMs(r.keepUntil) }),
          },
        };
      }
    }
  }
}

/**
 * An entity's encoded bytes: counted from its strings for the many small ones (subscriptions,
 * key mappings, revoked tokens; at most a few bytes over), encoded for the others.
 */
function encodedSize(e: SyncEntity, entity: GatewayEntity): number {
  // A string field: tag, length (2 bytes up to 16 KiB) and its UTF-8 bytes.
  const text = (...values: string[]) => values.reduce((n, v) => n + 3 + Buffer.byteLength(v), 0);
  switch (e.kind) {
    case "subscription": {
      const s = e.subscription;
      return 4 + text(s.id, s.applicationId, s.apiId, s.tier) + 2;
    }
    case "key-mapping": {
      const m = e.mapping;
      return 8 + text(m.consumerKey, m.applicationId, m.applicationName, m.subscriber, m.applicationTier, m.keyManager) + 4;
    }
    case "revoked-token":
      return 4 + text(e.token.jti, e.token.consumerKey) + 16;
    default:
      return toBinary(GatewayEntitySchema, entity).length;
  }
}

function revokedToPb(t: { jti: string; expiresAt: number; consumerKey: string; tokenType: "OPAQUE" | "JWT" }) {
  return { jti: t.jti, expireTime: timestampFromMs(t.expiresAt), consumerKey: t.consumerKey, tokenType: tokenTypeToPb(t.tokenType) };
}

function keyToPb(key: SyncEntityKey) {
  switch (key.kind) {
    case "api":
      return { key: { case: "apiId" as const, value: key.apiId } };
    case "key-mapping":
      return { key: { case: "consumerKey" as const, value: key.consumerKey } };
    case "subscription":
      return { key: { case: "subscription" as const, value: { applicationId: key.applicationId, apiId: key.apiId } } };
    case "scope":
      return { key: { case: "scopeName" as const, value: key.name } };
  }
}

function requestFromPb(req: WatchRequest): { fromVersion?: number; filter: SyncFilter } {
  const v = new Validator();
  if (req.fromVersion !== undefined) v.nonNegativeInteger("from_version", req.fromVersion, Number.MAX_SAFE_INTEGER);
  if (req.apiContexts.length > MAX_CONTEXTS) v.add("api_contexts", `at most ${MAX_CONTEXTS}`);
  req.apiContexts.slice(0, MAX_CONTEXTS).forEach((c, i) => {
    if (v.text(`api_contexts[${i}]`, c, MAX_CONTEXT_CHARS) && !c.startsWith("/")) v.add(`api_contexts[${i}]`, 'must start with "/"');
  });
  const keyType = req.keyType === PbKeyType.UNSPECIFIED ? undefined : keyTypeFromPb(v, "key_type", req.keyType);
  v.throwIfInvalid();
  const filter: SyncFilter = {
    ...(req.apiContexts.length > 0 && { apiContexts: new Set(req.apiContexts.map(normaliseContext)) }),
    ...(keyType !== undefined && { keyType }),
  };
  return { ...(req.fromVersion !== undefined && { fromVersion: Number(req.fromVersion) }), filter };
}
