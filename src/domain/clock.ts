/** Time as the domain sees it; tests inject a fixed or stepping clock instead of sleeping. */
export interface Clock {
  now(): Date;
  /**
   * The same instant in milliseconds since the epoch: what hot paths compare with, without
   * allocating a Date per call.
   */
  nowMs(): number;
}

export const systemClock: Clock = { now: () => new Date(), nowMs: Date.now };
