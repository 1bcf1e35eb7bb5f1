import { EventEmitter } from "node:events";

/** What changed, so caches on this node can drop exactly what went stale. */
export type Change =
  | { kind: "token"; tokenHash: string }
  | { kind: "tokens"; familyId?: string; endUser?: string; consumerKey?: string }
  | { kind: "application"; consumerKey: string }
  | { kind: "api"; apiId: string }
  | { kind: "resources"; apiId: string }
  | { kind: "subscription"; applicationId: string; apiId: string };

/** Publishes every change the domain commits; the validation cache listens. */
export class ChangeEvents {
  private readonly emitter = new EventEmitter();

  publish(change: Change): void {
    this.emitter.emit("change", change);
  }

  subscribe(listener: (change: Change) => void): () => void {
    this.emitter.on("change", listener);
    return () => this.emitter.off("change", listener);
  }
}
