import type { Clock } from "../../src/domain/clock.js";

/** A clock tests move forward instead of sleeping. */
export class TestClock implements Clock {
  private at: number;

  constructor(start = Date.UTC(2026, 10, 22, 12, 0, 0)) {
    this.at = start;
  }

  now(): Date {
    return new Date(this.at);
  }

  nowMs(): number {
    return this.at;
  }

  advance(seconds: number): void {
    this.at += seconds * 1000;
  }
}
