import { routeTiers, type BreakerConfig, type GatewayConfig } from "../config/schema.js";
import type { ChatRequest, ChatResult, FinishReason, StreamChunk, Usage } from "../core/chat.js";
import { emptyUsage } from "../core/chat.js";
import { GatewayError, UpstreamError, type ErrorClass } from "../core/errors.js";
import type { Deployment } from "../core/runtime.js";
import type { AttemptRecord, RouteTraceRecord } from "../core/trace.js";
import type { AdapterCall } from "../providers/adapter.js";
import { toUpstreamError } from "../providers/http.js";
import { backoffMs, retryPolicy } from "../resilience/backoff.js";
import {
  breakerPolicy,
  claimProbe,
  countsAgainstHealth,
  judgeBreaker,
  openBreaker,
  recordHealthFailure,
  recordHealthSuccess,
  settleProbe,
  SLOW_STREAK_TO_OPEN,
  type BreakerDoc,
  type BreakerVerdict,
} from "../resilience/breaker.js";
import { DEFAULT_QUOTA_COOLDOWN_MS, latencyKey, markProviderUnavailable, readHealth, type DeploymentHealth } from "../resilience/health.js";
import { localFor, type LocalResilience } from "../resilience/local.js";
import { judgeLearned, learnedFrom429, learnedFromSnapshot, parseRateLimitHeaders, storeLearned } from "../resilience/rate-headers.js";
import {
  acquireCapacity,
  capacityLikely,
  hasLimits,
  limitKeys,
  NO_LEASE,
  reservationTokens,
  type CapacityLease,
  type CapacityResult,
} from "../resilience/rate-limits.js";
import { startAttemptTimer, type AttemptLimits, type AttemptTimer } from "../resilience/timeouts.js";
import { pause } from "../resilience/wait.js";
import { SteppedIterator } from "../core/stepped-iterator.js";
import type { StateStore } from "../state/store.js";
import type { RoutePlan } from "./resolve.js";
import type { Cancellation } from "../core/cancel.js";

/**
 * The executor walks a RoutePlan: it calls candidates in order and fails
 * over at once on failures another deployment may not have (rate limits,
 * overload, 5xx, timeouts, broken connections, a rejected provider key),
 * never on the caller's own mistakes (invalid request, content filter). A
 * prompt too long for one model moves on to a larger window; a provider out
 * of quota is marked unavailable for a while on every replica.
 *
 * Before the first call, one batched read of the shared store gives each
 * candidate's breaker, learned rate limits and provider mark (and, for
 * `fastest` tiers, latency), which orders and filters the walk (the
 * gateway starts it with prefetchRoute, beside admission, so that with
 * Redis both share one round trip):
 *   - an open breaker (or one already probing) rules a deployment out; an
 *     open breaker past its cooldown admits this request as the single
 *     half-open probe if it wins the compare-and-set;
 *   - learned rate limits and quota marks are soft: such a deployment is
 *     tried only when nothing else is left (it answers a fast 429 at worst);
 *   - configured rpm/tpm limits are hard: a deployment without capacity is
 *     passed over; with none left, an interactive request gets
 *     ResourceExhausted with a retry hint and a batch request waits.
 *
 * Waiting happens in two cases only, bounded by the request's deadline and
 * abortable: retrying the same deployment after a backoff (when every other
 * candidate is spent and its provider allows retries), and a batch request
 * waiting for capacity. Failing over never waits.
 *
 * Bookkeeping after a success (reconciling the token reservation, shared
 * latency, the breaker's request count) is issued right after the answer
 * is handed over, before any further I/O (afterAnswer), and not waited
 * for: a store applies one connection's commands in order, so the next
 * request through this replica sees it. Failures, probes, breaker
 * transitions and quota marks are waited for, so the very next request
 * avoids what they found.
 *
 * Hedging (opt-in per route): when the running attempt has no first token
 * after a threshold, the next candidate starts beside it; the first to
 * produce a token wins and the other is cancelled. Streams fail over only
 * until their first token reaches the caller; after that a failure ends the
 * stream with the partial usage, never a duplicate.
 */

/** ExecOptions are per-request settings of an execution. */
export interface ExecOptions {
  /** startedAt is performance.now() when the request arrived (default: when execution starts). */
  startedAt?: number;
  /** deadlineAt is performance.now() by which the request must end (its latency budget or RPC deadline). */
  deadlineAt?: number;
  /** random drives backoff jitter (tests seed it). */
  random?: () => number;
  /** onStateError hears state-store failures of bookkeeping that must not fail the request. */
  onStateError?: (err: unknown) => void;
  /** prefetch is the plan's pre-call reads, started earlier by prefetchRoute (ignored, and discarded, if made for another plan). */
  prefetch?: RoutePrefetch;
  /**
   * sharedLatency names the deployments whose latency statistics some route
   * reads (latencyReaders); only theirs are recorded in the shared store.
   * Unset: every deployment's are.
   */
  sharedLatency?: ReadonlySet<string>;
}

/**
 * afterAnswer runs bookkeeping once the answer is on its way: on the next
 * tick, after the promise continuations that hand the answer to the edge
 * (which writes it), yet before any further I/O is handled, so the next
 * request through this replica still sees its effect. The returned promise
 * settles as fn's does.
 */
export function afterAnswer(fn: () => Promise<unknown>): Promise<void> {
  return new Promise<void>((resolve, reject) => process.nextTick(runDeferred, fn, () => resolve(), reject));
}

function runDeferred(fn: () => Promise<unknown>, onDone: (() => void) | undefined, onError: (err: unknown) => void): void {
  try {
    fn().then(onDone, onError);
  } catch (err) {
    onError(err);
  }
}

/**
 * deferAfterAnswer is afterAnswer for bookkeeping nobody waits for: its
 * failure goes to onError, and no promise is made for its outcome.
 */
function deferAfterAnswer(fn: () => Promise<unknown>, onError: (err: unknown) => void): void {
  process.nextTick(runDeferred, fn, undefined, onError);
}

const latencyReadersOf = new WeakMap<GatewayConfig, ReadonlySet<string>>();

/**
 * latencyReaders lists the deployments in some route's `fastest` tier: the
 * only readers of the shared latency statistics (hedging and the breaker's
 * p95 rule use this replica's own samples), so no other deployment's
 * latency is worth a store write.
 */
export function latencyReaders(config: GatewayConfig): ReadonlySet<string> {
  let ids = latencyReadersOf.get(config);
  if (ids === undefined) {
    const set = new Set<string>();
    for (const route of config.routes) {
      for (const tier of routeTiers(route)) {
        if (tier.strategy === "fastest") for (const t of tier.targets) set.add(typeof t === "string" ? t : t.model);
      }
    }
    ids = set;
    latencyReadersOf.set(config, ids);
  }
  return ids;
}

/** fastestIds lists the plan's deployments in `fastest` tiers (their latency is read, and their order is not known before). */
function fastestIds(plan: RoutePlan): ReadonlySet<string> {
  let ids: Set<string> | undefined;
  for (const t of plan.tiers) {
    if (t.strategy !== "fastest") continue;
    ids ??= new Set<string>();
    for (const d of t.candidates) ids.add(d.id);
  }
  return ids ?? NO_IDS;
}

// Most plans have no `fastest` tier: they share one empty set.
const NO_IDS: ReadonlySet<string> = new Set<string>();

/** Speculation is rate-limit capacity taken for a plan's first candidate before its health was known. */
interface Speculation {
  d: Deployment;
  tokens: number;
  result: Promise<CapacityResult>;
}

function releaseSpeculation(spec: Speculation): Promise<void> {
  return spec.result.then((r) => (r.ok ? r.lease.release() : undefined));
}

/** RoutePrefetch is a plan's pre-call state reads, started ahead of its execution (prefetchRoute). */
export interface RoutePrefetch {
  /** plan is the plan it was made for. */
  readonly plan: RoutePlan;
  /** discard gives back what it took ahead of time; call it when the plan will not be executed (admission refused it, or re-routed). */
  discard(): Promise<void>;
}

class Prefetch implements RoutePrefetch {
  private taken = false;

  constructor(
    readonly plan: RoutePlan,
    private readonly health: Promise<Map<string, DeploymentHealth>>,
    private readonly spec: Speculation | undefined,
  ) {
    // Nobody may ever look (a refused request): a failed read must not become an unhandled rejection.
    health.catch(() => undefined);
    spec?.result.catch(() => undefined);
  }

  /** take hands the reads to the one execution that uses them. */
  take(): { health: Promise<Map<string, DeploymentHealth>>; spec: Speculation | undefined } | undefined {
    if (this.taken) return undefined;
    this.taken = true;
    return { health: this.health, spec: this.spec };
  }

  discard(): Promise<void> {
    if (this.taken) return Promise.resolve();
    this.taken = true;
    return this.spec === undefined ? Promise.resolve() : releaseSpeculation(this.spec);
  }
}

/**
 * prefetchRoute starts what the executor reads before its first call — every
 * candidate's health (breaker, learned limits, provider mark, latency for
 * `fastest` tiers) — and, when the first candidate has rate limits that
 * had plenty of room when this replica last looked, takes its capacity
 * ahead of time. All of it is issued at once, so called beside admission's
 * own store calls it costs no extra round trip. The capacity is used only
 * if the health read leaves that candidate first in line; otherwise (or
 * on discard) it is given back, and a speculative refusal is simply asked
 * again in order.
 */
export function prefetchRoute(plan: RoutePlan, request: ChatRequest): RoutePrefetch {
  const fastest = fastestIds(plan);
  let breakers: Set<string> | undefined;
  for (const d of plan.candidates) if (breakerPolicy(d.provider, { breaker: plan.defaultBreaker }) !== undefined) (breakers ??= new Set<string>()).add(d.id);
  const health = readHealth(plan.state, plan.candidates, fastest, breakers ?? NO_IDS);
  let spec: Speculation | undefined;
  const first = plan.candidates[0];
  if (first !== undefined && !fastest.has(first.id) && hasLimits(first)) {
    const local = localFor(plan.state);
    const tokens = reservationTokens(first, request, plan.promptTokens);
    if (capacityLikely(local.windowTotals, first, tokens)) {
      spec = { d: first, tokens, result: acquireCapacity(plan.state, local.wakeup, first, tokens, local.windowTotals) };
    }
  }
  return new Prefetch(plan, health, spec);
}

/** ExtraUsage is what an attempt other than the answering one consumed (a hedge that lost). */
export interface ExtraUsage {
  deployment: Deployment;
  usage: Usage;
  /** estimated is true when the upstream never reported usage and this is the gateway's estimate. */
  estimated: boolean;
}

/** Completion is a successful non-streaming execution. */
export interface Completion {
  result: ChatResult;
  deployment: Deployment;
  trace: RouteTraceRecord;
  /** extraUsage is what other attempts consumed; the core bills it on top of the answer. */
  extraUsage: ExtraUsage[];
}

/** ExecStreamEvent is what a streaming execution yields. */
export type ExecStreamEvent =
  | { type: "start"; deployment: Deployment; attempts: number }
  | { type: "chunk"; chunk: StreamChunk }
  | { type: "end"; outcome: StreamOutcome };

/** CHARS_PER_OUTPUT_TOKEN converts streamed characters to tokens when the upstream never said (about 4 for English). */
const CHARS_PER_OUTPUT_TOKEN = 4;

/** StreamOutcome is how a started stream ended. */
export interface StreamOutcome {
  deployment: Deployment;
  finishReason: FinishReason;
  usage: Usage;
  /**
   * usageReported is false when the upstream never reported usage (cut,
   * failed or abandoned streams); usage is then the gateway's estimate: the
   * prompt estimate plus the output streamed so far, because providers bill
   * what they generated whether or not the stream finished.
   */
  usageReported: boolean;
  trace: RouteTraceRecord;
  /** timeToFirstTokenMs is when the first chunk arrived, from the request's start. */
  timeToFirstTokenMs?: number;
  /** error is set when the upstream failed after the stream started. */
  error?: UpstreamError;
  /** extraUsage is what other attempts consumed (hedges that lost); the core bills it on top. */
  extraUsage: ExtraUsage[];
}

/** A hard reason a candidate cannot be called now. */
interface Block {
  kind: "breaker" | "capacity";
  reason: string;
  /** readyAt is performance.now() when it may lift (Infinity: not within this request). */
  readyAt: number;
  /** keys are the rate-limit windows to wake on (capacity blocks). */
  keys: string[];
}

interface Candidate {
  d: Deployment;
  attempts: number;
  maxAttempts: number;
  /** notBefore is performance.now() before which a retry must not start (backoff). */
  notBefore: number;
  /** retryable is true when the last failure allows retrying this same deployment. */
  retryable: boolean;
  /** dead is true when this deployment is out for the rest of the request. */
  dead: boolean;
  running: boolean;
  block?: Block;
  /** soft is why this candidate is kept for last (learned rate limits, a quota mark). */
  soft?: string;
  breaker?: Readonly<BreakerConfig>;
  doc?: BreakerDoc;
  verdict: BreakerVerdict;
  /** tokens is the TPM reservation and the size judged against learned token limits. */
  tokens: number;
}

interface Attempt {
  c: Candidate;
  record: AttemptRecord;
  started: number;
  timer: AttemptTimer;
  lease: CapacityLease;
  probe?: BreakerDoc;
  /** settled resolves (never rejects) when the attempt has its first token, its answer, or failed. */
  settled: Promise<Attempt>;
  error?: UpstreamError;
  result?: ChatResult;
  iterator?: AsyncIterator<StreamChunk>;
  /** buffered holds the chunks up to and including the first with events (the first token). */
  buffered: StreamChunk[];
  firstTokenAt?: number;
}


/**
 * Verdicts that end the route: the caller's own mistakes (400), and the
 * upstream's 401/403/404, on which a fallback route must never fail over
 * (a rejected credential or an unknown upstream model is an operator's
 * configuration error; retrying it elsewhere would hide it).
 */
const stopClasses: ReadonlySet<ErrorClass> = new Set<ErrorClass>(["invalid_request", "content_filtered", "auth", "not_found"]);

/** nonRetryableError maps a non-retryable upstream failure to what the caller sees. */
function nonRetryableError(err: UpstreamError): GatewayError {
  const byClass: Partial<Record<ErrorClass, GatewayError["code"]>> = {
    invalid_request: "invalid_argument",
    context_length_exceeded: "invalid_argument",
    content_filtered: "invalid_argument",
  };
  // An upstream 401/403/404 is the gateway's configuration at fault, not the caller's key or model:
  // answer Unavailable (NotFound/Unauthenticated would send the caller looking at the wrong thing).
  const code = byClass[err.errorClass] ?? "unavailable";
  const openaiCode =
    err.errorClass === "context_length_exceeded" ? "context_length_exceeded" : err.errorClass === "content_filtered" ? "content_filter" : undefined;
  const message =
    err.errorClass === "auth"
      ? `the provider rejected the gateway's credentials for it (check the provider's api_key): ${err.message}`
      : err.errorClass === "not_found"
        ? `the provider does not know the configured upstream model (check models[].upstream): ${err.message}`
        : err.message;
  return new GatewayError(code, message, { openaiCode, cause: err });
}

function raceWithTimer(running: readonly Attempt[], delayMs: number | undefined): Promise<Attempt | undefined> {
  // One attempt and no hedge to start: nothing to race (the usual request).
  if (delayMs === undefined && running.length === 1) return running[0]!.settled;
  const settled = running.map((a) => a.settled);
  if (delayMs === undefined) return Promise.race(settled);
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, delayMs), undefined);
  });
  return Promise.race([...settled, elapsed]).finally(() => clearTimeout(timer));
}

/** Run is one request's walk through its plan. */
class Run {
  readonly trace: RouteTraceRecord;
  readonly extraUsage: ExtraUsage[] = [];
  private readonly store: StateStore;
  private readonly local: LocalResilience;
  private readonly cands: Candidate[];
  private readonly random: () => number;
  private readonly startedAt: number;
  private readonly deadlineAt: number;
  private readonly batch: boolean;
  private readonly onStateError: (err: unknown) => void;
  private readonly sharedLatency: ReadonlySet<string> | undefined;
  private prefetched: ReturnType<Prefetch["take"]>;
  /** spec is capacity taken ahead of time for the first candidate, until admit uses it or it is given back. */
  private spec: Speculation | undefined;
  private pending: Array<Promise<void>> = [];
  private readonly skippedSeen = new Set<string>();
  private stopErr: UpstreamError | undefined;
  private last: UpstreamError | undefined;
  private overflowed: number | undefined;
  private refused: string | undefined;

  constructor(
    private readonly plan: RoutePlan,
    private readonly request: ChatRequest,
    private readonly signal: Cancellation,
    private readonly stream: boolean,
    options: ExecOptions,
  ) {
    this.trace = { route: plan.route, strategy: plan.strategy, reason: plan.reason, attempts: [], skipped: [...plan.skipped] };
    for (const s of plan.skipped) this.skippedSeen.add(`${s.model}|${s.reason}`);
    this.store = plan.state;
    this.local = localFor(plan.state);
    this.random = options.random ?? Math.random;
    this.startedAt = options.startedAt ?? performance.now();
    this.deadlineAt = options.deadlineAt ?? Infinity;
    this.batch = request.routing.priority === "batch";
    this.onStateError = options.onStateError ?? (() => {});
    this.sharedLatency = options.sharedLatency;
    const prefetch = options.prefetch;
    if (prefetch !== undefined) {
      if (prefetch.plan === plan && prefetch instanceof Prefetch) this.prefetched = prefetch.take();
      else this.track(prefetch.discard());
    }
    const breakerDefaults = { breaker: plan.defaultBreaker };
    this.cands = plan.candidates.map((d) => ({
      d,
      attempts: 0,
      maxAttempts: plan.maxAttemptsPerTarget ?? retryPolicy(d.provider).max_retries + 1,
      notBefore: 0,
      retryable: false,
      dead: false,
      running: false,
      breaker: breakerPolicy(d.provider, breakerDefaults),
      verdict: { kind: "closed", epoch: 0 },
      tokens: reservationTokens(d, request, plan.promptTokens),
    }));
  }

  // -------------------------------------------------------------------------
  // Bookkeeping

  /** track runs store bookkeeping the request awaits before it ends (so the next request sees it). */
  private track(p: Promise<unknown>): void {
    this.pending.push(p.then(() => undefined, (err: unknown) => this.onStateError(err)));
  }

  /** background runs store bookkeeping nobody needs to wait for (issued now: the next request through this replica sees it). */
  private background(p: Promise<unknown>): void {
    p.catch(this.onStateError);
  }

  /** afterAnswer issues store bookkeeping nobody waits for once the answer is on its way (see afterAnswer). */
  private afterAnswer(fn: () => Promise<unknown>): void {
    deferAfterAnswer(fn, this.onStateError);
  }

  /** flush waits for tracked bookkeeping. */
  async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      await Promise.all(batch);
    }
  }

  private skip(model: string, reason: string): void {
    const key = `${model}|${reason}`;
    if (this.skippedSeen.has(key)) return;
    this.skippedSeen.add(key);
    this.trace.skipped.push({ model, reason });
  }

  // -------------------------------------------------------------------------
  // Health

  /** prepare reads every live candidate's health in one batch and judges it; the first time, it orders `fastest` tiers. */
  private async prepare(first: boolean): Promise<void> {
    const live = this.cands.filter((c) => !c.dead);
    const fastest = first ? fastestIds(this.plan) : NO_IDS;
    const prefetched = first ? this.prefetched : undefined;
    this.prefetched = undefined;
    let health: Map<string, DeploymentHealth>;
    try {
      health = await (prefetched?.health ??
        readHealth(this.store, live.map((c) => c.d), fastest, new Set(live.filter((c) => c.breaker !== undefined).map((c) => c.d.id))));
    } catch (err) {
      if (prefetched?.spec !== undefined) this.background(releaseSpeculation(prefetched.spec));
      throw err;
    }
    const now = Date.now();
    const soft: string[] = [];
    for (const c of live) {
      this.judge(c, health.get(c.d.id)!, now);
      if (c.soft !== undefined && first) soft.push(`${c.d.id} (${c.soft})`);
    }
    if (first && fastest.size > 0) this.orderFastest(health);
    if (soft.length > 0) this.trace.reason += `; kept for last: ${soft.join(", ")}`;
    const spec = prefetched?.spec;
    if (spec !== undefined) {
      // Capacity taken ahead of time is used only by the candidate the walk starts with anyway.
      const c = this.cands[0]!;
      if (c.d === spec.d && c.tokens === spec.tokens && c.verdict.kind === "closed" && this.startable(c, 0, performance.now())) this.spec = spec;
      else this.track(releaseSpeculation(spec));
    }
  }

  private judge(c: Candidate, h: DeploymentHealth, now: number): void {
    c.block = undefined;
    c.soft = undefined;
    c.doc = h.breaker;
    c.verdict = c.breaker === undefined ? { kind: "closed", epoch: 0 } : judgeBreaker(h.breaker, now);
    const v = c.verdict;
    if (v.kind === "open") {
      c.block = { kind: "breaker", reason: `circuit breaker open for another ${v.until - now} ms: ${v.reason}`, readyAt: performance.now() + (v.until - now), keys: [] };
    } else if (v.kind === "probing") {
      c.block = { kind: "breaker", reason: `circuit breaker half-open, another request is probing (${v.reason})`, readyAt: Infinity, keys: [] };
    }
    if (c.block !== undefined) {
      this.skip(c.d.id, c.block.reason);
      return;
    }
    const mark = h.provider;
    if (mark !== undefined && mark.until > now) {
      c.soft = `provider ${c.d.provider.id} unavailable for another ${mark.until - now} ms: ${mark.reason}`;
      return;
    }
    const learned = judgeLearned(h.learned, c.tokens, now);
    if (learned !== undefined) c.soft = learned.reason;
  }

  /** orderFastest orders each fastest tier's candidates in place: unobserved first (explored), then by decayed latency. */
  private orderFastest(health: ReadonlyMap<string, DeploymentHealth>): void {
    const notes: string[] = [];
    for (const tier of this.plan.tiers) {
      if (tier.strategy !== "fastest") continue;
      const ids = new Set(tier.candidates.map((d) => d.id));
      const positions: number[] = [];
      this.cands.forEach((c, i) => {
        if (ids.has(c.d.id)) positions.push(i);
      });
      const score = (c: Candidate): number => {
        const s = health.get(c.d.id)?.latency;
        if (s === undefined || s.samples < 1) return -1;
        return this.stream && s.ewmaTtftMs > 0 ? s.ewmaTtftMs : s.ewmaMs;
      };
      const group = positions.map((i) => ({ c: this.cands[i]!, score: score(this.cands[i]!) }));
      // Stable: unobserved keep their listed order at the front, observed follow by score.
      const sorted = [...group].sort((a, b) => (a.score < 0 && b.score < 0 ? 0 : a.score < 0 ? -1 : b.score < 0 ? 1 : a.score - b.score));
      positions.forEach((pos, k) => (this.cands[pos] = sorted[k]!.c));
      notes.push(
        `fastest by ${this.stream ? "time to first token" : "latency"}: ` +
          sorted.map((g) => `${g.c.d.id}=${g.score < 0 ? "unobserved (explored first)" : `${Math.round(g.score)}ms`}`).join(", "),
      );
    }
    if (notes.length > 0) this.trace.reason += `; ${notes.join("; ")}`;
  }

  // -------------------------------------------------------------------------
  // Starting attempts

  private tooSmall(c: Candidate): boolean {
    return this.overflowed !== undefined && c.d.model.context_window <= this.overflowed;
  }

  /** startable tells whether c may start now in a phase: 0 fresh, 1 fresh kept for last, 2 a retry after its backoff. */
  private startable(c: Candidate, phase: 0 | 1 | 2, now: number): boolean {
    if (c.dead || c.running || c.block !== undefined) return false;
    if (this.tooSmall(c)) {
      if (c.attempts === 0) this.skip(c.d.id, `context window ${c.d.model.context_window} too small (a smaller-or-equal window overflowed)`);
      return false;
    }
    if (phase === 0) return c.attempts === 0 && c.soft === undefined;
    if (phase === 1) return c.attempts === 0;
    return c.attempts > 0 && c.retryable && c.attempts < c.maxAttempts && c.notBefore <= now;
  }

  /** canHedge tells whether a fresh candidate is left to hedge with. */
  private canHedge(): boolean {
    const now = performance.now();
    return this.cands.some((c) => this.startable(c, 0, now));
  }

  /** startNext starts the best candidate that may start now (hedges: fresh ones only), or returns undefined. */
  private async startNext(hedge: boolean): Promise<Attempt | undefined> {
    const phases: ReadonlyArray<0 | 1 | 2> = hedge ? [0] : [0, 1, 2];
    for (const phase of phases) {
      for (const c of this.cands) {
        if (this.signal.aborted) return undefined;
        if (!this.startable(c, phase, performance.now())) continue;
        const a = await this.admit(c, hedge);
        if (a !== undefined) return a;
      }
    }
    return undefined;
  }

  /** admit claims the half-open probe if needed and rate-limit capacity, then launches; undefined when refused. */
  private async admit(c: Candidate, hedged: boolean): Promise<Attempt | undefined> {
    let probe: BreakerDoc | undefined;
    if (c.verdict.kind === "probe") {
      probe = await claimProbe(this.store, c.d.id, c.verdict.doc, c.breaker!, Date.now());
      if (probe === undefined) {
        c.block = { kind: "breaker", reason: "circuit breaker half-open, another request is probing", readyAt: Infinity, keys: [] };
        this.skip(c.d.id, c.block.reason);
        return undefined;
      }
      c.verdict = { kind: "closed", epoch: probe.epoch };
    }
    let lease = NO_LEASE;
    if (hasLimits(c.d)) {
      let cap: CapacityResult | undefined;
      const spec = this.spec;
      if (spec !== undefined && spec.d === c.d && probe === undefined) {
        this.spec = undefined;
        cap = await spec.result;
        // Refused ahead of time: ask again, now that this request is admitted and others' early holds are given back.
        if (!cap.ok && !cap.never) cap = undefined;
      }
      cap ??= await acquireCapacity(this.store, this.local.wakeup, c.d, c.tokens, this.local.windowTotals);
      if (!cap.ok) {
        if (probe !== undefined) this.track(settleProbe(this.store, c.d.id, probe, "neutral", c.breaker!, Date.now()));
        c.block = { kind: "capacity", reason: cap.reason, readyAt: cap.never ? Infinity : performance.now() + cap.retryAfterMs, keys: limitKeys(c.d) };
        this.skip(c.d.id, cap.reason);
        return undefined;
      }
      lease = cap.lease;
    }
    return this.launch(c, hedged, lease, probe);
  }

  private limitsFor(d: Deployment): AttemptLimits {
    const p = d.provider;
    return this.stream
      ? { firstTokenMs: p.first_token_timeout_ms ?? p.timeout_ms, idleMs: p.idle_timeout_ms, totalMs: p.total_timeout_ms }
      : { totalMs: p.total_timeout_ms };
  }

  private launch(c: Candidate, hedged: boolean, lease: CapacityLease, probe: BreakerDoc | undefined): Attempt {
    c.attempts++;
    c.running = true;
    const record: AttemptRecord = { provider: c.d.provider.id, model: c.d.id, outcome: "succeeded", latencyMs: 0, httpStatus: 0, hedged };
    this.trace.attempts.push(record);
    const timer = startAttemptTimer(this.signal, this.limitsFor(c.d));
    const a: Attempt = { c, record, started: performance.now(), timer, lease, probe, settled: undefined as unknown as Promise<Attempt>, buffered: [] };
    const call: AdapterCall = {
      request: this.request,
      model: c.d.model,
      upstreamModel: c.d.upstreamModel,
      signal: timer.signal,
      promptTokens: this.plan.promptTokens,
      onResponseHeaders: (status, headers) => this.onHeaders(a, status, headers),
    };
    a.settled = this.stream ? this.head(a, call) : this.whole(a, call);
    return a;
  }

  private onHeaders(a: Attempt, status: number, headers: Record<string, string | string[] | undefined>): void {
    a.record.httpStatus = status;
    try {
      const now = Date.now();
      const snapshot = parseRateLimitHeaders(headers, now);
      const learned = snapshot === undefined ? undefined : learnedFromSnapshot(snapshot, now);
      // Tracked, not background: the answer ends after the write, so a request other replicas get after it sees what was learned
      // (their cached copy is invalidated as Redis applies the write). Rare: only when capacity runs low.
      if (learned !== undefined) this.track(storeLearned(this.store, a.c.d.id, learned, now));
    } catch (err) {
      // Headers are advisory: a malformed one must never fail the call.
      this.onStateError(err);
    }
  }

  private async whole(a: Attempt, call: AdapterCall): Promise<Attempt> {
    try {
      a.result = await a.c.d.adapter.complete(call);
    } catch (e) {
      a.error = this.classify(a, e);
    }
    return a;
  }

  /** head runs a stream up to its first token (the first chunk with events), buffering what came before. */
  private async head(a: Attempt, call: AdapterCall): Promise<Attempt> {
    try {
      const it = a.c.d.adapter.stream(call)[Symbol.asyncIterator]();
      a.iterator = it;
      for (;;) {
        const next = await it.next();
        if (next.done === true) throw new UpstreamError("connection", `${a.c.d.provider.id}: the stream ended before any token`);
        a.buffered.push(next.value);
        if (next.value.events.length > 0) break;
      }
      a.firstTokenAt = performance.now();
      a.timer.firstToken();
    } catch (e) {
      a.error = this.classify(a, e);
    }
    return a;
  }

  /** classify names an attempt's failure: its own timeout, a cancellation by the gateway, or the upstream's error. */
  classify(a: Attempt, e: unknown): UpstreamError {
    const fired = a.timer.timedOut();
    if (fired !== undefined) return new UpstreamError("timeout", `${a.c.d.provider.id}: ${fired.message}`, { cause: e });
    const reason = a.timer.cancelled();
    if (reason !== undefined) return new UpstreamError("cancelled", reason, { cause: e });
    return toUpstreamError(e, a.timer.signal);
  }

  // -------------------------------------------------------------------------
  // The walk

  /**
   * acquire runs the walk until an attempt has its first token (streams)
   * or its answer, and returns it; every other attempt is cancelled. It
   * throws the GatewayError the caller should see when none succeeds.
   */
  async acquire(): Promise<Attempt> {
    await this.prepare(true);
    const running: Attempt[] = [];
    let hedges = this.plan.hedge?.max ?? 0;
    try {
      for (;;) {
        if (this.signal.aborted || this.stopErr !== undefined) break;
        if (running.length === 0) {
          const a = await this.startNext(false);
          if (a !== undefined) {
            running.push(a);
            continue;
          }
          if (await this.waitForChance()) continue;
          break;
        }
        const hedgeIn = hedges > 0 && this.canHedge() ? this.hedgeDelay(running[running.length - 1]!) : undefined;
        const settled = await raceWithTimer(running, hedgeIn);
        if (settled === undefined) {
          const h = await this.startNext(true);
          if (h !== undefined) {
            hedges--;
            running.push(h);
          } else hedges = 0;
          continue;
        }
        running.splice(running.indexOf(settled), 1);
        settled.c.running = false;
        if (settled.error === undefined) {
          for (const other of running) this.cancelOther(other, `lost the hedge race to ${settled.c.d.id}`);
          return settled;
        }
        this.onFailure(settled);
      }
    } finally {
      // Leaving with attempts still running (the caller left, a non-retryable verdict, an exception).
      for (const other of running) if (other.c.running) this.cancelOther(other, "the request ended before this attempt finished");
      // Capacity taken ahead of time that no attempt used (the request ended before its first call).
      if (this.spec !== undefined) this.track(releaseSpeculation(this.spec));
      this.spec = undefined;
    }
    throw await this.failure();
  }

  private hedgeDelay(latest: Attempt): number {
    const h = this.plan.hedge!;
    const threshold = h.afterMs === "p95" ? (this.local.latency.p95(latest.c.d.id, this.stream ? "ttft" : "total") ?? h.p95FallbackMs) : h.afterMs;
    return Math.max(0, latest.started + threshold - performance.now());
  }

  /** cancelOther stops an attempt that is no longer wanted and accounts for what it consumed. */
  private cancelOther(a: Attempt, reason: string): void {
    a.c.running = false;
    a.timer.cancel(reason);
    this.track(a.settled.then((done) => this.finishCancelled(done, reason)));
  }

  private async finishCancelled(a: Attempt, reason: string): Promise<void> {
    a.timer.dispose();
    const r = a.record;
    r.outcome = "cancelled";
    r.errorClass = "cancelled";
    r.errorMessage = a.result !== undefined ? `${reason}; its answer arrived too and was discarded` : reason;
    r.latencyMs = Math.round(performance.now() - a.started);
    if (a.iterator !== undefined) await a.iterator.return?.(undefined)?.catch(() => undefined);
    // The upstream received the prompt and, unless it says otherwise, is assumed to have billed it.
    const reported = a.result?.usage;
    const usage = reported ?? { ...emptyUsage(), inputTokens: this.plan.promptTokens };
    this.extraUsage.push({ deployment: a.c.d, usage, estimated: reported === undefined });
    await a.lease.settle(usage.inputTokens + usage.outputTokens);
    if (a.probe !== undefined) {
      await settleProbe(this.store, a.c.d.id, a.probe, a.result !== undefined ? "success" : "neutral", a.c.breaker!, Date.now());
    }
  }

  /** onFailure records a failed attempt and decides what it means for the rest of the walk. */
  private onFailure(a: Attempt): void {
    const err = a.error!;
    const c = a.c;
    const r = a.record;
    a.timer.dispose();
    r.outcome = err.errorClass === "cancelled" ? "cancelled" : "failed";
    r.errorClass = err.errorClass;
    r.errorMessage = err.message;
    r.latencyMs = Math.round(performance.now() - a.started);
    if (err.status !== 0) r.httpStatus = err.status;
    r.retryAfterMs = err.retryAfterMs;
    this.track(a.lease.settle(0));
    if (a.iterator !== undefined) this.background(Promise.resolve(a.iterator.return?.(undefined)));
    const now = Date.now();
    const id = c.d.id;
    const health = countsAgainstHealth(err.errorClass);
    if (a.probe !== undefined) this.track(settleProbe(this.store, id, a.probe, health ? "failure" : "neutral", c.breaker!, now, err.message));
    if (err.errorClass === "cancelled") return;
    this.last = err;
    if (health && c.breaker !== undefined) {
      if (a.probe !== undefined) c.dead = true;
      else if (c.verdict.kind === "closed") {
        this.track(
          recordHealthFailure(this.store, id, c.doc, err.message, c.breaker, now).then((opened) => {
            if (opened !== undefined) c.dead = true;
          }),
        );
      }
    }
    if (stopClasses.has(err.errorClass)) {
      this.stopErr = err;
      return;
    }
    switch (err.errorClass) {
      case "context_length_exceeded":
        this.overflowed = Math.max(this.overflowed ?? 0, c.d.model.context_window);
        c.dead = true;
        return;
      case "quota_exhausted": {
        const ms = err.retryAfterMs ?? c.d.provider.quota_cooldown_ms ?? DEFAULT_QUOTA_COOLDOWN_MS;
        this.track(markProviderUnavailable(this.store, c.d.provider.id, ms, err.message, now));
        for (const o of this.cands) if (o.d.provider.id === c.d.provider.id) o.dead = true;
        return;
      }
      case "rate_limited":
        this.track(storeLearned(this.store, id, learnedFrom429(err.retryAfterMs, now), now));
        break;
      default:
        break;
    }
    if (!err.retryable) {
      c.dead = true;
      return;
    }
    c.retryable = true;
    c.notBefore = performance.now() + backoffMs(retryPolicy(c.d.provider), c.attempts, err.retryAfterMs, this.random);
  }

  /**
   * waitForChance is reached when nothing can start now. It waits for the
   * earliest candidate that may become startable — a retry after its
   * backoff, or (batch requests only) rate-limit capacity — when that wait
   * fits the deadline and the limits on waiting; it returns false when the
   * request should fail instead.
   */
  private async waitForChance(): Promise<boolean> {
    await this.flush();
    if (this.signal.aborted || this.stopErr !== undefined) return false;
    const now = performance.now();
    let best: { at: number; kind: "retry" | "capacity"; c: Candidate } | undefined;
    for (const c of this.cands) {
      if (c.dead || c.running || this.tooSmall(c)) continue;
      let at: number;
      let kind: "retry" | "capacity";
      if (c.block !== undefined) {
        if (!this.batch || c.block.kind !== "capacity" || !Number.isFinite(c.block.readyAt)) continue;
        at = c.block.readyAt;
        kind = "capacity";
      } else if (c.attempts > 0 && c.retryable && c.attempts < c.maxAttempts) {
        at = c.notBefore;
        kind = "retry";
      } else continue;
      if (best === undefined || at < best.at) best = { at, kind, c };
    }
    if (best === undefined) return false;
    const wait = Math.max(0, Math.ceil(best.at - now));
    const remaining = this.deadlineAt - now;
    const limit = this.batch ? this.startedAt + this.plan.batchMaxWaitMs - now : this.plan.maxRetryWaitMs;
    if (wait > remaining || wait > limit) {
      const what = best.kind === "retry" ? `retrying ${best.c.d.id}` : `capacity on ${best.c.d.id}`;
      this.refused = `waiting ${wait} ms for ${what} would exceed ${wait > remaining ? "the request's deadline" : `the ${this.batch ? "batch" : "retry"} wait limit`}`;
      return false;
    }
    const keys = this.cands.flatMap((c) => (c.block?.kind === "capacity" ? c.block.keys : []));
    const end = await pause(wait, this.signal, this.local.wakeup, keys);
    if (end === "aborted") return false;
    if (keys.length > 0 || best.kind === "capacity") {
      // Capacity may be back (or the limits lifted): re-read health and admit again.
      for (const c of this.cands) if (c.block?.kind === "capacity") c.block = undefined;
      await this.prepare(false);
    }
    return true;
  }

  /** failure builds the error for a request that produced no answer. */
  private async failure(): Promise<GatewayError> {
    await this.flush();
    const trace = this.trace;
    let err: GatewayError;
    if (this.signal.aborted) {
      // A deadline shows as a TimeoutError reason (a latency budget) or as the deadline having passed (an RPC's, whatever its transport's reason).
      const timedOut = (this.signal.reason as { name?: string } | undefined)?.name === "TimeoutError" || performance.now() >= this.deadlineAt - 2;
      err = timedOut
        ? new GatewayError("deadline_exceeded", "the request's deadline passed before any provider answered")
        : new GatewayError("canceled", "the caller cancelled the request");
    } else if (this.stopErr !== undefined) {
      err = nonRetryableError(this.stopErr);
    } else {
      const now = performance.now();
      const failed = trace.attempts.filter((a) => a.outcome === "failed");
      const blocked = this.cands.filter((c) => !c.dead && c.attempts === 0 && c.block !== undefined);
      const blockedHints = blocked.map((c) => c.block!.readyAt - now).filter((ms) => Number.isFinite(ms)).map((ms) => Math.max(1, Math.ceil(ms)));
      const summary = [
        ...failed.map((a) => `${a.model}: ${a.errorClass} (${a.errorMessage ?? ""})`),
        ...blocked.map((c) => `${c.d.id}: ${c.block!.reason}`),
      ].join("; ");
      const refused = this.refused === undefined ? "" : `; ${this.refused}`;
      const rateLimited = failed.every((a) => a.errorClass === "rate_limited") && blocked.every((c) => c.block!.kind === "capacity");
      if (rateLimited && failed.length + blocked.length > 0) {
        const hints = [...failed.map((a) => a.retryAfterMs ?? 1000), ...blockedHints];
        const what = failed.length > 0 ? "every candidate is rate limited" : "no candidate has rate-limit capacity";
        err = new GatewayError("resource_exhausted", `${what}: ${summary}${refused}`, {
          retryAfterMs: hints.length > 0 ? Math.min(...hints) : 1000,
          openaiCode: "rate_limit_exceeded",
        });
      } else if (failed.length === 0) {
        err = new GatewayError("unavailable", `no candidate of "${this.request.model}" is available: ${summary}${refused}`, {
          retryAfterMs: blockedHints.length > 0 ? Math.min(...blockedHints) : undefined,
        });
      } else if (
        this.last !== undefined &&
        !this.last.retryable &&
        (this.last.errorClass === "context_length_exceeded" || failed.every((a) => a.errorClass === this.last!.errorClass))
      ) {
        err = nonRetryableError(this.last);
      } else {
        err = new GatewayError("unavailable", `all ${failed.length} attempt(s) failed: ${summary}${refused}`);
      }
    }
    err.trace = trace;
    return err;
  }

  // -------------------------------------------------------------------------
  // Success

  /** completed records a winning non-streaming attempt. */
  completed(a: Attempt): void {
    a.timer.dispose();
    const r = a.record;
    r.latencyMs = Math.round(performance.now() - a.started);
    if (r.httpStatus === 0) r.httpStatus = 200;
    const usage = a.result!.usage;
    const tokens = usage.inputTokens + usage.outputTokens;
    this.afterAnswer(() => a.lease.settle(tokens));
    this.healthy(a, r.latencyMs, undefined);
  }

  /** streamed records how a winning stream ended: "ok", "failed" (mid-stream) or "abandoned" (the caller left). */
  streamed(a: Attempt, outcome: StreamOutcome, how: "ok" | "failed" | "abandoned"): void {
    a.timer.dispose();
    const tokens = outcome.usage.inputTokens + outcome.usage.outputTokens;
    const c = a.c;
    if (how === "ok") {
      this.afterAnswer(() => a.lease.settle(tokens));
      this.healthy(a, a.record.latencyMs, a.record.timeToFirstTokenMs);
      return;
    }
    this.track(a.lease.settle(tokens));
    const now = Date.now();
    const health = how === "failed" && outcome.error !== undefined && countsAgainstHealth(outcome.error.errorClass);
    if (a.probe !== undefined) this.track(settleProbe(this.store, c.d.id, a.probe, health ? "failure" : "neutral", c.breaker!, now, outcome.error?.message));
    else if (health && c.breaker !== undefined && c.verdict.kind === "closed") {
      this.track(recordHealthFailure(this.store, c.d.id, c.doc, outcome.error!.message, c.breaker, now));
    }
  }

  /** healthy records a healthy answer: shared latency, local samples, the breaker's counters or probe. */
  private healthy(a: Attempt, latencyMs: number, ttftMs: number | undefined): void {
    const c = a.c;
    const id = c.d.id;
    if (this.sharedLatency === undefined || this.sharedLatency.has(id)) {
      const halfLife = this.plan.latencyHalfLifeMs;
      this.afterAnswer(() => this.store.recordLatency(latencyKey(id), latencyMs, ttftMs, halfLife));
    }
    const window = this.local.latency.window(id, ttftMs !== undefined ? "ttft" : "total");
    window.add(ttftMs ?? latencyMs);
    const policy = c.breaker;
    if (policy === undefined) return;
    const now = Date.now();
    if (a.probe !== undefined) {
      this.track(settleProbe(this.store, id, a.probe, "success", policy, now));
      return;
    }
    if (c.verdict.kind !== "closed") return;
    const epoch = c.verdict.epoch;
    this.afterAnswer(() => recordHealthSuccess(this.store, id, epoch, policy));
    const limit = policy.latency_p95_ms;
    if (limit === undefined) return;
    const p95 = window.p95(1)!;
    window.slowStreak = p95 > limit ? window.slowStreak + 1 : 0;
    if (window.slowStreak >= SLOW_STREAK_TO_OPEN) {
      window.slowStreak = 0;
      const reason = `p95 ${ttftMs !== undefined ? "time to first token" : "latency"} ${Math.round(p95)} ms > ${limit} ms for ${SLOW_STREAK_TO_OPEN} requests in a row`;
      this.track(openBreaker(this.store, id, c.doc, reason, policy, now));
    }
  }
}

/** executeComplete runs a non-streaming request through its plan. */
export async function executeComplete(plan: RoutePlan, request: ChatRequest, signal: Cancellation, options: ExecOptions = {}): Promise<Completion> {
  const run = new Run(plan, request, signal, false, options);
  const a = await run.acquire();
  run.completed(a);
  await run.flush();
  return { result: a.result!, deployment: a.c.d, trace: run.trace, extraUsage: run.extraUsage };
}

/**
 * executeStream runs a streaming request through its plan. The first
 * next() rejects with a GatewayError when no candidate could start; after
 * "start" the iteration always finishes with an "end" event (carrying the
 * error, if the upstream failed mid-stream). Returning early (the caller
 * left) cancels the upstream request and reports what was consumed so far
 * through onAbandoned, so partial usage is still accounted.
 */
export function executeStream(
  plan: RoutePlan,
  request: ChatRequest,
  signal: Cancellation,
  requestStart: number,
  onAbandoned: (outcome: StreamOutcome) => void,
  options: ExecOptions = {},
): AsyncIterableIterator<ExecStreamEvent> {
  return new ExecStream(plan, request, signal, requestStart, onAbandoned, options);
}

/** ExecStream is executeStream's iteration (a SteppedIterator: its middle state runs once per streamed chunk). */
class ExecStream extends SteppedIterator<ExecStreamEvent> {
  /** new: not begun; started: "start" sent, chunks flowing; done: "end" sent, failed to start, or abandoned. */
  private phase: "new" | "started" | "done" = "new";
  private run: Run | undefined;
  private a: Attempt | undefined;
  private outcome: StreamOutcome | undefined;
  /** nextBuffered indexes the attempt's chunks read before its first token, which go out first. */
  private nextBuffered = 0;
  private finished = false;
  private streamedChars = 0;

  constructor(
    private readonly plan: RoutePlan,
    private readonly request: ChatRequest,
    private readonly signal: Cancellation,
    private readonly requestStart: number,
    private readonly onAbandoned: (outcome: StreamOutcome) => void,
    private readonly options: ExecOptions,
  ) {
    super();
  }

  protected async step(): Promise<IteratorResult<ExecStreamEvent, undefined>> {
    if (this.phase === "new") return { value: await this.begin(), done: false };
    if (this.phase === "done") return { value: undefined, done: true };
    const a = this.a!;
    const outcome = this.outcome!;
    try {
      if (this.nextBuffered < a.buffered.length) {
        const chunk = a.buffered[this.nextBuffered++]!;
        this.scan(chunk);
        a.timer.hold();
        return { value: { type: "chunk", chunk }, done: false };
      }
      if (this.nextBuffered > 0) {
        a.buffered.length = 0;
        this.nextBuffered = 0;
      }
      a.timer.touch();
      const next = await a.iterator!.next();
      if (next.done !== true) {
        this.scan(next.value);
        a.timer.hold();
        return { value: { type: "chunk", chunk: next.value }, done: false };
      }
      if (!this.finished) throw new UpstreamError("connection", "the provider's stream ended before it finished");
      this.estimateUnreported();
    } catch (e) {
      const err = this.run!.classify(a, e);
      a.record.outcome = err.errorClass === "cancelled" ? "cancelled" : "failed";
      a.record.errorClass = err.errorClass;
      a.record.errorMessage = err.message;
      outcome.finishReason = "error";
      outcome.error = err;
      this.estimateUnreported();
    }
    this.phase = "done";
    a.record.latencyMs = Math.round(performance.now() - a.started);
    this.run!.streamed(a, outcome, outcome.error === undefined ? "ok" : "failed");
    await this.run!.flush();
    return { value: { type: "end", outcome }, done: false };
  }

  /** begin walks the plan to a first token and returns the "start" event. */
  private async begin(): Promise<ExecStreamEvent> {
    const run = new Run(this.plan, this.request, this.signal, true, { startedAt: this.requestStart, ...this.options });
    this.run = run;
    let a: Attempt;
    try {
      a = await run.acquire();
    } catch (err) {
      this.phase = "done";
      throw err;
    }
    this.a = a;
    const d = a.c.d;
    a.record.timeToFirstTokenMs = Math.round(a.firstTokenAt! - a.started);
    if (a.record.httpStatus === 0) a.record.httpStatus = 200;
    this.outcome = {
      deployment: d,
      finishReason: "stop",
      usage: emptyUsage(),
      usageReported: false,
      trace: run.trace,
      timeToFirstTokenMs: Math.round(a.firstTokenAt! - this.requestStart),
      extraUsage: run.extraUsage,
    };
    this.phase = "started";
    return { type: "start", deployment: d, attempts: run.trace.attempts.length };
  }

  /** leave is the consumer leaving: a started stream is cancelled upstream and what it used so far is accounted. */
  protected async leave(): Promise<void> {
    if (this.phase !== "started") {
      this.phase = "done";
      return;
    }
    this.phase = "done";
    const a = this.a!;
    const outcome = this.outcome!;
    a.record.latencyMs = Math.round(performance.now() - a.started);
    a.record.outcome = "cancelled";
    a.record.errorClass = "cancelled";
    outcome.finishReason = "error";
    outcome.error = new UpstreamError("cancelled", "the caller cancelled the stream");
    a.timer.cancel("the caller cancelled the stream");
    await a.iterator!.return?.(undefined);
    this.estimateUnreported();
    this.run!.streamed(a, outcome, "abandoned");
    await this.run!.flush();
    this.onAbandoned(outcome);
  }

  private scan(chunk: StreamChunk): void {
    const outcome = this.outcome!;
    for (const e of chunk.events) {
      if (e.type === "usage") {
        outcome.usage = e.usage;
        outcome.usageReported = true;
      } else if (e.type === "finish") {
        outcome.finishReason = e.finishReason;
        this.finished = true;
      } else if (e.type === "tool_call") {
        this.streamedChars += e.argumentsDelta.length + (e.name?.length ?? 0);
      } else {
        this.streamedChars += e.text.length;
      }
    }
  }

  /** estimateUnreported bills a stream that ended without reported usage: spend never goes unaccounted. */
  private estimateUnreported(): void {
    const outcome = this.outcome!;
    if (outcome.usageReported) return;
    outcome.usage = { ...emptyUsage(), inputTokens: this.plan.promptTokens, outputTokens: Math.ceil(this.streamedChars / CHARS_PER_OUTPUT_TOKEN) };
  }
}
