import { readdirSync, readFileSync, statSync } from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import { tmpdir, userInfo } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Reading a V8 .cpuprofile (from `node --cpu-prof`) into hot spots: self
 * time per function, inclusive time per function of this repository, and
 * self time per module (a repo file, an npm package, a node: internal).
 *
 * The gateway runs under tsx, which compiles each .ts file to one minified
 * line, so profile positions are columns in compiled code. They are mapped
 * back to .ts lines through the source maps tsx keeps in its disk cache
 * (os.tmpdir()/tsx-<uid>/); a position that cannot be mapped says so.
 */

/** CpuProfileNode is a node of the profile's call tree. */
export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

/** CpuProfile is the JSON V8 writes. */
export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** HotSpot is one function's share of the CPU. */
export interface HotSpot {
  functionName: string;
  /** location is repo-relative file:line, a package path, or a V8 pseudo-frame. */
  location: string;
  /** module groups the location: a repo file, "undici", "node:internal/…", "(garbage collector)". */
  module: string;
  us: number;
  /** pct is the share of non-idle sampled time. */
  pct: number;
  /** caller is, for self time, the nearest package or repo function most often on the stack above it ("name location"). */
  caller?: string;
}

/** ModuleShare is a module's self time. */
export interface ModuleShare {
  module: string;
  us: number;
  pct: number;
}

/** ProfileSummary is an analyzed profile. */
export interface ProfileSummary {
  /** busyUs is sampled non-idle time in the analyzed window. */
  busyUs: number;
  /** idleUs is sampled idle time in the analyzed window. */
  idleUs: number;
  /** self are functions by self time, highest first. */
  self: HotSpot[];
  /** inclusive are this repository's functions by inclusive time (self plus callees), highest first. */
  inclusive: HotSpot[];
  /** modules are modules by self time, highest first. */
  modules: ModuleShare[];
}

/** Position maps a compiled position to a source line; undefined when it cannot. */
export type PositionResolver = (file: string, line0: number, column0: number, functionName: string) => number | undefined;

/** AnalyzeOptions configure analyzeProfile. */
export interface AnalyzeOptions {
  /** repoRoot is the repository's absolute path (for "repo" frames and relative locations). */
  repoRoot: string;
  /**
   * fromUs and toUs bound the analyzed window, in the profile's clock (µs).
   * On Linux that clock is CLOCK_MONOTONIC, the same as
   * process.hrtime.bigint() / 1000n in any process, so a harness can mark
   * when its load started and ended.
   */
  fromUs?: number;
  toUs?: number;
  /** top is how many entries each list keeps; default 20. */
  top?: number;
  /** resolve maps compiled positions of repo files to source lines (see tsxSourceResolver). */
  resolve?: PositionResolver;
}

function moduleOf(url: string, functionName: string, repoRoot: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  if (url.startsWith("node:")) {
    const parts = url.slice(5).split("/");
    return `node:${parts.slice(0, Math.min(parts.length, 2)).join("/")}`;
  }
  const path = url.startsWith("file://") ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = path.slice(nm + "/node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  return path.startsWith(repoRoot) ? relative(repoRoot, path) : path;
}

function isRepoFrame(url: string, repoRoot: string): boolean {
  if (!url.startsWith("file://")) return false;
  const path = fileURLToPath(url);
  return path.startsWith(repoRoot) && !path.includes("/node_modules/");
}

/** analyzeProfile computes self, inclusive and per-module time. */
export function analyzeProfile(profile: CpuProfile, options: AnalyzeOptions): ProfileSummary {
  const top = options.top ?? 20;
  const byId = new Map<number, CpuProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }

  const keyOf = (n: CpuProfileNode): string => `${n.callFrame.functionName}\u0000${n.callFrame.url}\u0000${n.callFrame.lineNumber}\u0000${n.callFrame.columnNumber}`;
  const self = new Map<string, { node: CpuProfileNode; us: number; callers: Map<number, number> }>();
  const inclusive = new Map<string, { node: CpuProfileNode; us: number }>();
  let busyUs = 0;
  let idleUs = 0;
  let t = profile.startTime;
  const from = options.fromUs ?? Number.NEGATIVE_INFINITY;
  const to = options.toUs ?? Number.POSITIVE_INFINITY;

  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    // A sample stands for the time until the next one.
    const dur = profile.timeDeltas[i + 1] ?? 0;
    if (t < from || t > to || dur <= 0) continue;
    const node = byId.get(profile.samples[i]!);
    if (node === undefined) continue;
    const fn = node.callFrame.functionName;
    if (fn === "(idle)") {
      idleUs += dur;
      continue;
    }
    busyUs += dur;
    const k = keyOf(node);
    let s = self.get(k);
    if (s === undefined) {
      s = { node, us: 0, callers: new Map() };
      self.set(k, s);
    }
    s.us += dur;
    // The caller worth naming is the nearest package or repo frame: "writev" called by node:net says little.
    let callerId = parent.get(node.id);
    while (callerId !== undefined) {
      const url = byId.get(callerId)!.callFrame.url;
      if (url !== "" && !url.startsWith("node:")) break;
      callerId = parent.get(callerId);
    }
    if (callerId !== undefined) s.callers.set(callerId, (s.callers.get(callerId) ?? 0) + dur);
    // Inclusive: each distinct repo function on the stack once (recursion must not count twice).
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!;
      if (!isRepoFrame(frame.callFrame.url, options.repoRoot)) continue;
      const fk = keyOf(frame);
      if (seen.has(fk)) continue;
      seen.add(fk);
      const e = inclusive.get(fk);
      if (e === undefined) inclusive.set(fk, { node: frame, us: dur });
      else e.us += dur;
    }
  }

  const toSpot = ({ node, us, callers }: { node: CpuProfileNode; us: number; callers?: Map<number, number> }): HotSpot => {
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    const spot: HotSpot = {
      functionName: functionName === "" ? "(anonymous)" : functionName,
      location: locate(url, lineNumber, columnNumber, functionName, options),
      module: moduleOf(url, functionName, options.repoRoot),
      us,
      pct: busyUs > 0 ? (us * 100) / busyUs : 0,
    };
    if (callers !== undefined && callers.size > 0) {
      const [topId] = [...callers.entries()].sort((a, b) => b[1] - a[1])[0]!;
      const c = byId.get(topId)!.callFrame;
      spot.caller = `${c.functionName === "" ? "(anonymous)" : c.functionName} ${locate(c.url, c.lineNumber, c.columnNumber, c.functionName, options)}`;
    }
    return spot;
  };
  const modules = new Map<string, number>();
  for (const { node, us } of self.values()) {
    const m = moduleOf(node.callFrame.url, node.callFrame.functionName, options.repoRoot);
    modules.set(m, (modules.get(m) ?? 0) + us);
  }
  return {
    busyUs,
    idleUs,
    self: [...self.values()].sort((a, b) => b.us - a.us).slice(0, top).map(toSpot),
    inclusive: [...inclusive.values()].sort((a, b) => b.us - a.us).slice(0, top).map(toSpot),
    modules: [...modules.entries()]
      .map(([module, us]) => ({ module, us, pct: busyUs > 0 ? (us * 100) / busyUs : 0 }))
      .sort((a, b) => b.us - a.us)
      .slice(0, top),
  };
}

function locate(url: string, line0: number, col0: number, functionName: string, options: AnalyzeOptions): string {
  if (url === "") return "(V8)";
  if (!url.startsWith("file://")) return `${url}:${line0 + 1}`;
  const path = fileURLToPath(url);
  const shown = path.startsWith(options.repoRoot) ? relative(options.repoRoot, path) : path;
  if (path.endsWith(".ts") || path.endsWith(".mts") || path.endsWith(".cts")) {
    const line = options.resolve?.(path, line0, col0, functionName);
    // esbuild's keepNames helper is injected at the top of every compiled file and has no source line.
    if (line === undefined && functionName === "__name") return `${shown} (tsx/esbuild keepNames helper, injected)`;
    return line === undefined ? `${shown} (compiled col ${col0 + 1}, unmapped)` : `${shown}:${line}`;
  }
  return `${shown}:${line0 + 1}`;
}

interface CacheEntry {
  mtimeMs: number;
  code: string;
  map: SourceMapPayload;
}

/**
 * tsxSourceResolver maps positions in tsx-compiled code back to .ts lines
 * using tsx's on-disk cache. A file may have several cached versions (it
 * was edited); the newest version whose code has the function's name at the
 * profiled position is used.
 */
export function tsxSourceResolver(cacheDir = join(tmpdir(), `tsx-${userInfo().uid}`)): PositionResolver {
  let index: Map<string, CacheEntry[]> | undefined;
  const maps = new Map<CacheEntry, SourceMap>();

  function build(): Map<string, CacheEntry[]> {
    const out = new Map<string, CacheEntry[]>();
    let names: string[] = [];
    try {
      names = readdirSync(cacheDir);
    } catch {
      return out;
    }
    for (const name of names) {
      try {
        const file = join(cacheDir, name);
        const parsed = JSON.parse(readFileSync(file, "utf8")) as { code?: unknown; map?: SourceMapPayload };
        const source = parsed.map?.sources?.[0];
        if (typeof parsed.code !== "string" || parsed.map === undefined || typeof source !== "string") continue;
        const entry: CacheEntry = { mtimeMs: statSync(file).mtimeMs, code: parsed.code, map: parsed.map };
        const list = out.get(source);
        if (list === undefined) out.set(source, [entry]);
        else list.push(entry);
      } catch {
        // Not a cache entry this resolver understands: skip it.
      }
    }
    for (const list of out.values()) list.sort((a, b) => b.mtimeMs - a.mtimeMs);
    return out;
  }

  return (file, line0, col0, functionName) => {
    index ??= build();
    const candidates = index.get(file);
    if (candidates === undefined) return undefined;
    const lineText = (e: CacheEntry): string => (line0 === 0 ? e.code : (e.code.split("\n")[line0] ?? ""));
    const fits = (e: CacheEntry): boolean => {
      const text = lineText(e);
      if (col0 >= text.length) return false;
      if (functionName === "") return true;
      return text.slice(Math.max(0, col0 - 120), col0 + 120).includes(functionName);
    };
    const entry = candidates.find(fits);
    if (entry === undefined) return undefined;
    let sm = maps.get(entry);
    if (sm === undefined) {
      sm = new SourceMap(entry.map);
      maps.set(entry, sm);
    }
    const hit = sm.findEntry(line0, col0) as { originalLine?: number } | undefined;
    return hit?.originalLine === undefined ? undefined : hit.originalLine + 1;
  };
}
