import { LRUCache } from "lru-cache";
import type { ChangeEvents } from "../domain/change-events.js";

interface Decision<V> {
  generation: number;
  validUntil: number;
  value: V;
}

/**
 * Whole answers of the gateway check, keyed by everything the answer depends on. Any change
 * (published on this node or received from another replica) retires every answer at once (a
 * generation counter, so the cost is one increment); an answer also ends when its token expires.
 */
export class DecisionCache<V extends {}> {
  private current = 0;
  private readonly entries: LRUCache<string, Decision<V>>;
  private readonly unsubscribe: () => void;

  constructor(events: ChangeEvents, maxEntries: number, maxBytes: number) {
    this.entries = new LRUCache<string, Decision<V>>({ max: maxEntries, maxSize: maxBytes, sizeCalculation: (_, key) => 600 + key.length * 2 });
    this.unsubscribe = events.subscribe(() => {
      this.current++;
    });
  }

  /** Taken before an answer is worked out, and given back to `set`. */
  get generation(): number {
    return this.current;
  }

  get(key: string, nowMs: number): V | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.generation !== this.current || hit.validUntil <= nowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.value;
  }

  /** Keeps an answer worked out from reads begun at `generation`; dropped if a change came since. */
  set(key: string, value: V, validUntil: number, generation = this.current): void {
    if (generation !== this.current) return;
    this.entries.set(key, { generation, validUntil, value });
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    this.unsubscribe();
  }
}
