/**
 * Budget periods are calendar periods in UTC: a day starts at 00:00 UTC, a
 * week on Monday 00:00 UTC (ISO 8601 weeks), a month on the 1st at 00:00
 * UTC. Spend is kept per period under the period's id, so a new period
 * starts from zero without anyone resetting anything, and a request that
 * straddles midnight is charged to the period it was admitted in.
 */

/** BudgetPeriod is how often a budget resets. */
export type BudgetPeriod = "day" | "week" | "month";

/** PeriodWindow is one calendar period. */
export interface PeriodWindow {
  /** id names the period: "2026-11-21", "2026-W47", "2026-11". */
  readonly id: string;
  /** startMs is the period's first millisecond (epoch ms, UTC). */
  readonly startMs: number;
  /** endMs is the next period's first millisecond: the reset time. */
  readonly endMs: number;
}

const DAY_MS = 86_400_000;
const pad = (n: number, width = 2) => String(n).padStart(width, "0");

// The last window computed per period: every request asks, and a window lasts a day or more.
const lastWindow = new Map<BudgetPeriod, PeriodWindow>();

/** periodWindow returns the period containing nowMs (the same object while it lasts: do not modify it). */
export function periodWindow(period: BudgetPeriod, nowMs: number): PeriodWindow {
  const last = lastWindow.get(period);
  if (last !== undefined && nowMs >= last.startMs && nowMs < last.endMs) return last;
  const w = computeWindow(period, nowMs);
  lastWindow.set(period, w);
  return w;
}

function computeWindow(period: BudgetPeriod, nowMs: number): PeriodWindow {
  const d = new Date(nowMs);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const dayStart = Date.UTC(y, m, d.getUTCDate());
  switch (period) {
    case "day":
      return { id: `${y}-${pad(m + 1)}-${pad(d.getUTCDate())}`, startMs: dayStart, endMs: dayStart + DAY_MS };
    case "week": {
      // getUTCDay: 0 = Sunday; ISO weeks start on Monday.
      const weekday = (d.getUTCDay() + 6) % 7;
      const start = dayStart - weekday * DAY_MS;
      // The ISO week-year is the year of the week's Thursday.
      const thursday = new Date(start + 3 * DAY_MS);
      const isoYear = thursday.getUTCFullYear();
      const week = 1 + Math.floor((thursday.getTime() - Date.UTC(isoYear, 0, 1)) / (7 * DAY_MS));
      return { id: `${isoYear}-W${pad(week)}`, startMs: start, endMs: start + 7 * DAY_MS };
    }
    case "month":
      return { id: `${y}-${pad(m + 1)}`, startMs: Date.UTC(y, m, 1), endMs: Date.UTC(y, m + 1, 1) };
  }
}
