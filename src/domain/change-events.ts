import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Api, ApiResource, KeyMapping, Subscription, TokenType } from "@keymanager/core";

/** What changed, so caches can drop exactly what went stale. */
export type Change =
  /** A token revoked; `external`: one of an external key manager's, not stored here. */
  | { kind: "token"; tokenHash: string; external?: RevokedToken }
  | { kind: "tokens"; familyId?: string; endUser?: string; consumerKey?: string }
  | { kind: "application"; consumerKey: string }
  | { kind: "api"; apiId: string }
  | { kind: "resources"; apiId: string }
  | { kind: "subscription"; applicationId: string; apiId: string }
  /** A JWT signing key was added or retired: replicas read the keys again. */
  | { kind: "signing-keys" }
  /** A scope registered, updated or deleted (ScopeService). */
  | { kind: "scope"; name: string }
  /** A reload changed the external key managers (what a gateway receives of them). */
  | { kind: "external-key-managers" }
  /** Anything may have changed (changes of other replicas were missed): caches drop everything. */
  | { kind: "all" };

/** A change the change log records: every kind but "all" (which only says changes were missed). */
export type LoggableChange = Exclude<Change, { kind: "all" }>;

/** An API with its resources (none registered: empty), as a gateway needs it. */
export interface GatewayApi extends Api {
  resources: ApiResource[];
}

/** A scope as a gateway needs it: what its resources' scopes mean, and who may hold it. */
export interface GatewayScope {
  name: string;
  displayName: string;
  description: string;
  roles: string[];
}

/** A subscription as a gateway needs it, with its API's context (for gateways that keep some APIs only). */
export interface GatewaySubscription extends Subscription {
  /** Undefined when the API is gone. */
  apiContext?: string;
}

/** A consumer key as a gateway needs it: the application holding it, and its client's token type. */
export interface GatewayKeyMapping extends KeyMapping {
  tokenType: TokenType;
}

/** A revoked access token a gateway may still be shown: its id (a JWT's jti) until it expires. */
export interface RevokedToken {
  jti: string;
  /** Epoch ms. */
  expiresAt: number;
  consumerKey: string;
  tokenType: TokenType;
}

/**
 * The state a change left, read in the change's own transaction, so a log entry needs nothing
 * else to be applied (a gateway's copy never reads state newer than the entry's version). An
 * absent entity was deleted.
 */
export type ChangeDetail =
  /** An API or its resources changed: the API as it is now, with its resources. */
  | { kind: "api" | "resources"; apiId: string; api?: GatewayApi }
  | { kind: "application"; consumerKey: string; mapping?: GatewayKeyMapping }
  | { kind: "subscription"; applicationId: string; apiId: string; subscription?: GatewaySubscription }
  /** One token revoked (absent: no such token, nothing a gateway must refuse). */
  | { kind: "token"; revoked?: RevokedToken }
  /**
   * Tokens revoked together at `at` (epoch ms): by consumer key (every token of the client issued
   * until then), by end user (likewise), or a refresh token's family (each token listed).
   */
  | {
      kind: "tokens";
      at: number;
      consumerKey?: string;
      endUser?: string;
      revoked: RevokedToken[];
      /**
       * Epoch ms: no token the revocation refuses is alive after it (a gateway may forget it then).
       * Absent in entries written before it was recorded.
       */
      keepUntil?: number;
    }
  /** The public keys tokens may be signed with (JWKS `keys`), the active one first. */
  | { kind: "signing-keys"; keys: Array<Record<string, unknown>> }
  /** A scope as it is now (absent: deleted). */
  | { kind: "scope"; name: string; scope?: GatewayScope }
  /**
   * The external key managers changed: nothing recorded, each replica sends those of its own
   * deployment file (they are not stored).
   */
  | { kind: "external-key-managers" };

/** One entry of the change log. */
export interface LoggedChange {
  /** Gap-free and in commit order, the same on every replica. */
  version: number;
  /** Epoch ms of the commit (by the writing replica's clock). */
  at: number;
  change: LoggableChange;
  detail: ChangeDetail;
  /** The replica that committed it (its ChangeEvents.replica); absent in older entries. */
  by?: string;
}

/**
 * Where a change comes from. "local": committed by this replica. "peer": read from the change log
 * (another replica's commit), or the log reader's own flush after it may have missed changes.
 */
export type Origin = "local" | "peer";

/**
 * Whether a change this replica committed is published to its caches at the commit. Not its
 * external key managers: the reload changing them publishes that at once, before (and whether or
 * not) the change log records it, so its caches drop once; the entry still reaches its Watch
 * streams (through the log reader).
 */
export function publishedAtCommit(change: LoggableChange): boolean {
  return change.kind !== "external-key-managers";
}

/**
 * Publishes every change: the caches listen. The store publishes its commits here ("local") as
 * soon as they are committed; the change log reader (src/cluster) the other replicas' ("peer").
 */
export class ChangeEvents {
  private readonly emitter = new EventEmitter();
  /** This replica, as its log entries name it: a replica tells its own entries from its peers'. */
  readonly replica: string = randomUUID();

  constructor() {
    // Every Watch stream of a replica listens for the log entries (GatewaySyncService).
    this.emitter.setMaxListeners(0);
  }

  publish(change: Change, origin: Origin = "local"): void {
    this.emitter.emit("change", change, origin);
  }

  subscribe(listener: (change: Change, origin: Origin) => void): () => void {
    this.emitter.on("change", listener);
    return () => this.emitter.off("change", listener);
  }

  /** Entries this replica has just committed: published locally, and the log reader woken. */
  committed(entries: readonly LoggedChange[]): void {
    for (const entry of entries) if (publishedAtCommit(entry.change)) this.publish(entry.change, "local");
    if (entries.length > 0) this.emitter.emit("committed", entries);
  }

  onCommitted(listener: (entries: readonly LoggedChange[]) => void): () => void {
    this.emitter.on("committed", listener);
    return () => this.emitter.off("committed", listener);
  }
}
