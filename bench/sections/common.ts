import type { Plan } from "../plan.js";
import type { Pinning } from "../proc.js";
import type { Progress } from "../progress.js";
import type { Cell, Column, Unit } from "../report.js";
import type { ServerProcess } from "../servers.js";
import { paired, spread } from "../stats.js";
import { TARGET_LABELS, type Target, type TargetId } from "../targets.js";

/**
 * What every section shares: the running targets, the plan, progress, and
 * helpers that turn per-round values into the report's cells (one per
 * target, then the gateway's difference or ratio against the floor, taken
 * round by round so that both sides of a difference saw the same noise).
 */

/** GatewayLaunch configures an extra gateway process a section starts itself. */
export interface GatewayLaunch {
  /** name labels the process in errors. */
  name: string;
  /** extraArgs go after --config/--port (such as --workers 2). */
  extraArgs?: string[];
  /** nodeFlags go before --import tsx (such as --cpu-prof). */
  nodeFlags?: string[];
  /** cpus is a taskset list; default the servers' CPUs. */
  cpus?: string;
  /** upstreamOrigin points the gateway at another upstream than the shared one. */
  upstreamOrigin?: string;
  /** redisUrl puts the gateway's state on the Redis at this URL (under its own key prefix) instead of in memory. */
  redisUrl?: string;
  /** wrapper is a command the gateway runs under (such as valgrind). */
  wrapper?: string[];
  /** timeoutMs bounds the wait for readiness (default 20 s). */
  timeoutMs?: number;
}

/** BenchContext is what sections run against. */
export interface BenchContext {
  plan: Plan;
  /** targets are the running targets, in the order rounds visit them. */
  targets: Target[];
  /** unavailable says why a target is not measured (such as the Redis backend not being wired). */
  unavailable: Partial<Record<TargetId, string>>;
  progress: Progress;
  pinning: Pinning;
  upstream: ServerProcess;
  /** redisUrl is the Redis the gateway+Redis target keeps its state in (undefined when Redis is unreachable). */
  redisUrl?: string;
  /** startGateway starts another gateway process on the bench config, memory state unless launch says otherwise (stopped by the caller, or at the end). */
  startGateway(launch: GatewayLaunch): Promise<ServerProcess>;
}

/** PerTarget collects one number per round for each target. */
export type PerTarget = Partial<Record<TargetId, number[]>>;

/** record appends a round's value for a target. */
export function record(values: PerTarget, id: TargetId, value: number): void {
  (values[id] ??= []).push(value);
}

/** TARGET_COLUMNS are the standard columns: each target, then the comparisons against the floor. */
export const TARGET_COLUMNS: Column[] = [
  { key: "direct", label: TARGET_LABELS.direct },
  { key: "proxy", label: TARGET_LABELS.proxy },
  { key: "gateway", label: TARGET_LABELS.gateway },
  { key: "gatewayRedis", label: TARGET_LABELS.gatewayRedis },
  { key: "gatewayVsFloor", label: "gateway vs floor" },
  { key: "redisVsFloor", label: "gateway+Redis vs floor" },
];

/** targetCells returns one cell per target column; unmeasured targets say why. */
export function targetCells(ctx: BenchContext, values: PerTarget, unit: Unit, only?: readonly TargetId[]): Record<string, Cell> {
  const cells: Record<string, Cell> = {};
  for (const id of Object.keys(TARGET_LABELS) as TargetId[]) {
    if (only !== undefined && !only.includes(id)) {
      cells[id] = { text: "—" };
      continue;
    }
    const reason = ctx.unavailable[id];
    const v = values[id];
    cells[id] = reason !== undefined ? { text: "not measured" } : v === undefined ? { text: "—" } : { value: spread(v), unit };
  }
  return cells;
}

/**
 * comparisonCells fills gatewayVsFloor and redisVsFloor with the per-round
 * difference (signed, in unit) or ratio (×) of each gateway against the proxy.
 */
export function comparisonCells(ctx: BenchContext, values: PerTarget, kind: "diff" | "ratio", unit: Unit): Record<string, Cell> {
  const floor = values.proxy ?? [];
  const cell = (id: TargetId): Cell => {
    if (ctx.unavailable[id] !== undefined) return { text: "not measured" };
    const v = values[id];
    if (v === undefined || floor.length === 0) return { text: "—" };
    return versusFloor(v, floor, kind, unit);
  };
  return { gatewayVsFloor: cell("gateway"), redisVsFloor: cell("gatewayRedis") };
}

/** versusFloor is the per-round difference (signed, in unit) or ratio (×) of values against the floor's. */
export function versusFloor(values: readonly number[], floor: readonly number[], kind: "diff" | "ratio", unit: Unit): Cell {
  return kind === "diff" ? { value: spread(paired(values, floor, "diff")), unit, signed: true } : { value: spread(paired(values, floor, "ratio")), unit: "×" };
}

/** rate formats a live request rate for the progress line. */
export function rate(finished: number, elapsedMs: number): string {
  return `${finished} req · ${elapsedMs > 0 ? ((finished * 1000) / elapsedMs).toFixed(0) : "0"} req/s`;
}

/** ErrorLog collects error notes without repeating the same target/message. */
export class ErrorLog {
  private readonly seen = new Set<string>();
  readonly notes: string[] = [];

  /** add records errors of one run, if any. */
  add(where: string, errors: number, requests: number, firstError: string | undefined): void {
    if (errors === 0) return;
    const key = `${where}|${firstError ?? ""}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.notes.push(`errors: ${where}: ${errors} of ${requests} requests failed; first: ${firstError ?? "unknown"}`);
  }
}
