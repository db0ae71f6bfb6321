/**
 * When the primary restarts a worker that died: soon the first time, later
 * each time it keeps dying, and never more than MAX_RESTARTS_PER_MINUTE
 * times in any minute per worker slot, so a worker that crashes at start
 * cannot spin the machine. The cap delays the next restart rather than
 * abandoning the slot: whatever made it crash (a Redis outage, a full disk)
 * may pass.
 */

/** RESTART_DELAY_MS is the delay before the first restart; it doubles with each restart in the last minute. */
export const RESTART_DELAY_MS = 250;
/** RESTART_DELAY_MAX_MS caps the doubling. */
export const RESTART_DELAY_MAX_MS = 10_000;
/** MAX_RESTARTS_PER_MINUTE is the cap per worker slot. */
export const MAX_RESTARTS_PER_MINUTE = 5;
/** RESTART_WINDOW_MS is the window the cap counts over. */
export const RESTART_WINDOW_MS = 60_000;

/** RestartPlan is when to restart a worker slot. */
export interface RestartPlan {
  /** delayMs is how long to wait before forking the replacement. */
  delayMs: number;
  /** capped is set when the per-minute cap, not the backoff, decided the delay. */
  capped: boolean;
  /** recent are the slot's restart times still inside the window (the caller keeps them). */
  recent: number[];
}

/** planRestart decides the delay for a slot whose earlier restarts happened at the times in restarts (ms). */
export function planRestart(restarts: readonly number[], now: number): RestartPlan {
  const recent = restarts.filter((t) => now - t < RESTART_WINDOW_MS);
  const backoff = Math.min(RESTART_DELAY_MS * 2 ** recent.length, RESTART_DELAY_MAX_MS);
  if (recent.length < MAX_RESTARTS_PER_MINUTE) return { delayMs: backoff, capped: false, recent };
  // The oldest restart in the window must leave it before another one fits.
  const oldest = Math.min(...recent);
  return { delayMs: Math.max(backoff, oldest + RESTART_WINDOW_MS - now), capped: true, recent };
}
