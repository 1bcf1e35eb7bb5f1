/** Time as the domain sees it; tests inject a fixed or stepping clock instead of sleeping. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
