import { LRUCache } from "lru-cache";
import type { ChangeEvents } from "../domain/change-events.js";

interface Decision<V> {
  generation: number;
  validUntil: number;
  value: V;
}

/**
 * Whole answers of the gateway check, keyed by everything the answer depends on. Any change
 * published on this node retires every answer at once (a generation counter, so the cost is one
 * increment); an answer also ends when its token expires.
 */
export class DecisionCache<V extends {}> {
  private generation = 0;
  private readonly entries: LRUCache<string, Decision<V>>;
  private readonly unsubscribe: () => void;

  constructor(events: ChangeEvents, maxEntries: number, maxBytes: number) {
    this.entries = new LRUCache<string, Decision<V>>({ max: maxEntries, maxSize: maxBytes, sizeCalculation: (_, key) => 600 + key.length * 2 });
    this.unsubscribe = events.subscribe(() => {
      this.generation++;
    });
  }

  get(key: string, nowMs: number): V | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.generation !== this.generation || hit.validUntil <= nowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.value;
  }

  set(key: string, value: V, validUntil: number): void {
    this.entries.set(key, { generation: this.generation, validUntil, value });
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    this.unsubscribe();
  }
}
