import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/**
 * What the benchmark reads from /proc: a process's CPU time (utime + stime
 * from /proc/<pid>/stat) and resident memory (VmRSS from
 * /proc/<pid>/status), summed over the process and its descendants so that
 * a multi-worker gateway is measured whole. Also CPU pinning with taskset.
 * Linux only; elsewhere the readers return NaN and the report says so.
 */

let ticksPerSecond: number | undefined;

/** clockTicks returns the kernel's USER_HZ (the unit of utime/stime), usually 100. */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface StatLine {
  ppid: number;
  ticks: number;
}

function readStat(pid: number): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** processTree returns pid and every live descendant of it. */
export function processTree(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [pid];
  }
  const children = new Map<number, number[]>();
  for (const e of entries) {
    const child = Number(e);
    if (!Number.isInteger(child)) continue;
    const st = readStat(child);
    if (st === undefined) continue;
    const list = children.get(st.ppid);
    if (list === undefined) children.set(st.ppid, [child]);
    else list.push(child);
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []));
  return out;
}

/** cpuMicros returns the CPU time (user + system) used so far by the pids, in µs; NaN if none is readable. */
export function cpuMicros(pids: readonly number[]): number {
  let ticks = 0;
  let seen = false;
  for (const pid of pids) {
    const st = readStat(pid);
    if (st === undefined) continue;
    ticks += st.ticks;
    seen = true;
  }
  return seen ? (ticks * 1_000_000) / clockTicks() : Number.NaN;
}

/** rssBytes returns the summed resident set size of the pids; NaN if none is readable. */
export function rssBytes(pids: readonly number[]): number {
  let kb = 0;
  let seen = false;
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/status`, "latin1");
    } catch {
      continue;
    }
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
    if (m === null) continue;
    kb += Number(m[1]);
    seen = true;
  }
  return seen ? kb * 1024 : Number.NaN;
}

/** CpuMeter measures CPU used by a process tree between start() and stop(). */
export interface CpuMeter {
  /** stop returns the CPU µs used since the meter was created. */
  stop(): number;
}

/** meterCpu starts measuring the CPU of pid and its descendants (looked up now and again at stop). */
export function meterCpu(pid: number): CpuMeter {
  const before = new Map<number, number>();
  for (const p of processTree(pid)) before.set(p, cpuMicros([p]));
  return {
    stop() {
      let total = 0;
      for (const p of processTree(pid)) {
        const now = cpuMicros([p]);
        if (Number.isNaN(now)) continue;
        // A process that appeared during the run counts from zero.
        total += now - (before.get(p) ?? 0);
      }
      return total;
    },
  };
}

/** Pinning says which CPUs the load generator and the servers run on. */
export interface Pinning {
  /** enabled is false when taskset is missing or there is a single CPU. */
  enabled: boolean;
  /** loadgen is the taskset CPU list of the load generator (this process). */
  loadgen: string;
  /** servers is the taskset CPU list of upstream, proxy and gateway. */
  servers: string;
  /** all is every CPU, for runs that must use both (multi-worker scaling). */
  all: string;
  /** note explains the layout in the report. */
  note: string;
}

/** planPinning picks a layout: the load generator on CPU 0, the servers on the others. */
export function planPinning(): Pinning {
  const cpus = availableParallelism();
  const all = cpus > 1 ? `0-${cpus - 1}` : "0";
  let hasTaskset = false;
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    hasTaskset = true;
  } catch {
    hasTaskset = false;
  }
  if (!hasTaskset || cpus < 2) {
    return { enabled: false, loadgen: all, servers: all, all, note: hasTaskset ? "not pinned: one CPU" : "not pinned: taskset not found" };
  }
  const servers = cpus === 2 ? "1" : `1-${cpus - 1}`;
  return { enabled: true, loadgen: "0", servers, all, note: `load generator on CPU 0; upstream, proxy and gateway on CPU ${servers}` };
}

/** pinProcess moves a running process (all its threads) to a CPU list; it returns false if taskset failed. */
export function pinProcess(pid: number, cpus: string): boolean {
  try {
    execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** affinityOf returns a process's CPU list as taskset prints it ("0,1"), or undefined when it cannot be read. */
export function affinityOf(pid: number): string | undefined {
  try {
    const out = execFileSync("taskset", ["-p", "-c", String(pid)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return /:\s*(\S+)\s*$/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}
