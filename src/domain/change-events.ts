import { EventEmitter } from "node:events";

/** What changed, so caches can drop exactly what went stale. */
export type Change =
  | { kind: "token"; tokenHash: string }
  | { kind: "tokens"; familyId?: string; endUser?: string; consumerKey?: string }
  | { kind: "application"; consumerKey: string }
  | { kind: "api"; apiId: string }
  | { kind: "resources"; apiId: string }
  | { kind: "subscription"; applicationId: string; apiId: string }
  /** A JWT signing key was added or retired: replicas read the keys again. */
  | { kind: "signing-keys" }
  /** Anything may have changed (changes of other replicas were missed): caches drop everything. */
  | { kind: "all" };

/**
 * Where a change comes from. "local": committed by this replica, so the cluster change feed
 * broadcasts it to the others. "peer": received from another replica, or the feed's own flush
 * after it may have missed changes; never broadcast again.
 */
export type Origin = "local" | "peer";

/** Publishes every change the domain commits; the caches and the cluster change feed listen. */
export class ChangeEvents {
  private readonly emitter = new EventEmitter();

  publish(change: Change, origin: Origin = "local"): void {
    this.emitter.emit("change", change, origin);
  }

  subscribe(listener: (change: Change, origin: Origin) => void): () => void {
    this.emitter.on("change", listener);
    return () => this.emitter.off("change", listener);
  }
}
