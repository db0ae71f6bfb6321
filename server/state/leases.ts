import type { StateStore, WindowEntry, WindowRequest, WindowsResult } from "./store.js";
import { USED_UPPER_BOUND } from "./store.js";

/**
 * Quota leases: how a replica on a remote store admits most requests
 * without a round trip, and still never admits more than a limit.
 *
 * A replica takes capacity ahead of use from the shared store, in one
 * atomic call against the real limit, and spends it locally: a lease of a
 * window group (a scope's rpm and tpm windows) or of a budget. Every unit
 * a lease holds is counted in the store while the lease lives, so the
 * store's totals never under-count what replicas admitted; what a lease
 * did not spend, and what its requests gave back, goes back when it ends,
 * leaseMs after it was taken (a lease replaced by a newer one stops
 * admitting but keeps taking its requests' give-backs until then, so they
 * cost one store call, not one each; what requests give back after that
 * goes back together, leaseMs after the first of them). Exactness rests on
 * three rules:
 *
 * - A window lease's entries are timed leaseMs ahead (holdMs): a unit spent
 *   any time during the lease still counts for a whole window after it was
 *   spent. The error is on the safe side: units count up to leaseMs longer.
 * - Give-backs name the entry they were counted in (WindowEntry), so a
 *   request's unused tokens never come out of another replica's lease.
 * - A budget lease is a reservation like a request's (StateStore.reserve);
 *   each request it admitted settles its own spend at once, releasing its
 *   share (settle with `release`), so spend is never held back locally and
 *   a crashed replica's lease lapses with the reservation.
 *
 * Leases are granted only far from a limit, so what they hold is small
 * next to what is left: a window's lease only while the window stays at
 * most half full and the lease is at most 1/64 of the limit; a budget's
 * only while 63 more such leases would fit after it (and under its soft
 * limit, so that a lease never admits past the point where the budget
 * degrades requests). Near a limit no lease is granted, those still out
 * end within leaseMs, and every request asks the store, exactly as
 * without leases: refusals are decided there.
 *
 * A lease is sized to the demand it sees, counted in requests (what
 * requests give back, such as a TPM estimate's unused tokens, is not
 * demand): it starts at LEASE_START requests' worth, doubles when
 * requests find it used up or it is half used before half its time, and
 * halves when it serves fewer than half its size in its whole time or
 * under a quarter by the time it is renewed. A request it admits renews
 * it in the background once more than half of it is used or half its
 * time has passed, so a steady stream of requests, slow or in bursts,
 * finds the next lease in place, never waits on the store, and asks it
 * about twice per leaseMs. (Without the time rule, a lease serving a
 * slow stream ran out of time before it was half used, and the next
 * requests, a whole burst of streams at once, asked the store.)
 *
 * The cost is staleness where nothing is enforced: `used` totals are this
 * replica's last view, and a lease-admitted request reports its budget's
 * status as of the lease's grant (at most leaseMs old).
 */

/** LEASE_START is a new lease's size, in requests' worth. */
export const LEASE_START = 4;

/** LEASE_MAX bounds a lease's size, in requests' worth. */
export const LEASE_MAX = 1024;

// A lease is at most this fraction of a limit, and a budget's is granted only while this many fit in what is left.
const LIMIT_SHARE = 64;

/** Taken is what one admission took from a group's windows. */
export interface Taken {
  /**
   * adjust changes what window i took by delta: negative to give back (at
   * most what it took), positive when the request used more than it took.
   */
  adjust(i: number, delta: number): Promise<void>;
}

/** WindowsAdmission is an acquire's outcome, and, when it was allowed, what it took. */
export interface WindowsAdmission {
  result: WindowsResult;
  /** taken is set when result.allowed. */
  taken?: Taken;
}

/** Sizing is a lease's adaptive size and its renewal state, kept per group or budget. */
interface Sizing {
  /** size is the next lease's size in requests' worth. */
  size: number;
  /** renewing is true while a lease request is in flight. */
  renewing: boolean;
  /** quietUntil is when to ask for a lease again after a refusal or failure (performance.now()). */
  quietUntil: number;
  /** missed is set when a request found no lease to serve it (none yet, or too little left) since the last one was installed. */
  missed?: boolean;
}

function grow(s: Sizing): void {
  s.size = Math.min(LEASE_MAX, s.size * 2);
}

function shrink(s: Sizing): void {
  s.size = Math.max(LEASE_START, Math.floor(s.size / 2));
}

const clock = () => performance.now();

/** LeaseLife is what every lease keeps of its time and use. */
interface LeaseLife {
  /** endsAt is when the lease may no longer admit (performance.now() clock; a window lease's is at or before its entries' time on the store's clock). */
  endsAt: number;
  /** size is the lease's size in requests' worth, and served how many requests it admitted. */
  size: number;
  served: number;
  closed: boolean;
  /** replaced is true once a newer lease admits in its place (it still takes give-backs until it ends). */
  replaced: boolean;
  timer?: NodeJS.Timeout;
  end?: () => void;
}

/** WindowLease is capacity a replica holds in a group's windows. */
interface WindowLease extends LeaseLife {
  windowMs: number;
  keys: string[];
  limits: number[];
  entries: WindowEntry[];
  /** granted and free per window. */
  granted: number[];
  free: number[];
  /** used is each window's total when the lease was granted (lease included): the totals this replica reports. */
  used: number[];
  /** late is, per window, what requests gave back after the lease ended, not yet sent (see lateGiveBack). */
  late?: number[];
}

interface GroupState extends Sizing {
  lease?: WindowLease;
}

/** BudgetLease is budget a replica holds as one reservation. */
interface BudgetLease extends LeaseLife {
  id: string;
  free: bigint;
  granted: bigint;
  /** committed and reserved as of the grant (the lease included). */
  committed: bigint;
  reserved: bigint;
  /** reservedUntil is when the store lets the reservation lapse (performance.now() clock, a lower bound). */
  reservedUntil: number;
  /** ttlMs is the budget hash's TTL as of the grant (for giving back what is left). */
  ttlMs: number;
}

interface BudgetState extends Sizing {
  lease?: BudgetLease;
}

/** BudgetAdmission is a reservation's outcome, and how to settle it when it was made. */
export interface BudgetAdmission {
  ok: boolean;
  committed: bigint;
  reserved: bigint;
  /** settle records the actual spend and ends the reservation (call once). */
  settle(actual: bigint): Promise<void>;
}

let leaseIds = 0;
const replicaTag = `${process.pid.toString(36)}${Math.floor(Math.random() * 2 ** 32).toString(36)}`;

/** LeaseStats count admissions by where they were decided, since the store was opened. */
export interface LeaseStats {
  windowsFromLease: number;
  windowsFromStore: number;
  budgetsFromLease: number;
  budgetsFromStore: number;
}

/** Leases are one store's quota leases on this replica (see above). */
export interface Leases {
  /**
   * acquireWindows is store.windowsAcquire(requests, windowMs) with `used`
   * as a hint (USED_UPPER_BOUND), served from this replica's lease of the
   * group when it holds enough. Give back or adjust through `taken`.
   */
  acquireWindows(requests: readonly WindowRequest[], windowMs: number): Promise<WindowsAdmission>;
  /**
   * reserve is store.reserve(key, id, amount, limit, ttlMs, reservationTtlMs),
   * served from this replica's lease of the budget when it holds enough;
   * leases are granted only while committed + reserved + the lease stays
   * within leaseLimit (the caller's soft limit, when it has one) and 63
   * more leases would fit under limit.
   */
  reserve(key: string, id: string, amount: bigint, limit: bigint, leaseLimit: bigint, ttlMs: number, reservationTtlMs: number): Promise<BudgetAdmission>;
  /** stats counts the admissions so far, from a lease or from the store (the llm_gateway_state_admissions_total metric). */
  stats(): LeaseStats;
  /** close gives back what the leases hold and stops their timers. */
  close(): Promise<void>;
}

const noop = (): undefined => undefined;

/** createLeases builds the leases of one store; with store.leaseMs 0 every call goes to the store. */
export function createLeases(store: StateStore): Leases {
  // Anything but a positive leaseMs (a hand-built store, say) turns leases off.
  const leaseMs = store.leaseMs > 0 ? store.leaseMs : 0;
  // Window groups by their first key, budgets by their key.
  const groups = new Map<string, GroupState>();
  const budgets = new Map<string, BudgetState>();
  let closed = false;
  const counts: LeaseStats = { windowsFromLease: 0, windowsFromStore: 0, budgetsFromLease: 0, budgetsFromStore: 0 };
  // Every lease not yet ended, current or replaced, so that close() can end them all.
  const open = new Set<{ end?: () => void }>();
  // Late give-backs waiting to be sent (lateGiveBack), so that close() can send them at once.
  const pendingFlushes = new Set<() => void>();

  // quiet ends a renewal that got no lease: ask the store per request for a while.
  function quiet(s: Sizing): void {
    s.renewing = false;
    s.quietUntil = clock() + leaseMs;
  }

  // install makes lease the current one, in place of the one it replaces, and ends it when its time is up.
  // A replaced lease admits no one, but takes its requests' give-backs until its own time is up and then
  // returns them with what it did not hand out, in one call rather than one per request.
  function install<L extends LeaseLife>(s: Sizing & { lease?: L }, lease: L, end: (l: L) => void): void {
    lease.end = () => end(lease);
    lease.timer = setTimeout(lease.end, Math.max(0, lease.endsAt - clock()));
    lease.timer.unref();
    open.add(lease);
    const previous = s.lease;
    s.lease = lease;
    if (previous !== undefined) previous.replaced = true;
    // Requests found no lease to serve them, or the last was half used before half its life: demand
    // outruns the size, so the next is twice as large (once, however many missed). A lease renewed
    // because half its time had passed, having served under a quarter of its size, was too large.
    if (s.missed === true || (previous !== undefined && clock() < previous.endsAt - leaseMs / 2)) grow(s);
    else if (previous !== undefined && previous.served * 4 < previous.size) shrink(s);
    s.missed = false;
  }

  // renewalDue tells whether a lease that just admitted a request should be renewed in the background: once
  // it has served more than half its size, or half its time has passed, so that a steady demand finds the next lease
  // in place when this one ends rather than asking the store. (Callers also renew once half its capacity is out.)
  function renewalDue(lease: LeaseLife, now: number): boolean {
    return lease.served * 2 > lease.size || now >= lease.endsAt - leaseMs / 2;
  }

  // retire marks a lease ended (false if it already was) and, if it is the current one, leaves its owner without.
  function retire<L extends { closed: boolean; timer?: NodeJS.Timeout; end?: () => void }>(s: { lease?: L }, lease: L): boolean {
    if (lease.closed) return false;
    lease.closed = true;
    clearTimeout(lease.timer);
    open.delete(lease);
    if (s.lease === lease) s.lease = undefined;
    return true;
  }

  // wasted tells whether a lease that admitted for its whole time served fewer than half its size: then the next is smaller.
  // (Requests, not capacity: what requests give back to a lease, such as a TPM estimate's unused tokens, is not demand.)
  function wasted(lease: LeaseLife): boolean {
    return !lease.replaced && clock() >= lease.endsAt && lease.served * 2 < lease.size;
  }

  // ---- windows ----

  function exactTaken(requests: readonly WindowRequest[], windowMs: number, result: WindowsResult): Taken {
    return {
      adjust: (i, delta) => (delta === 0 ? Promise.resolve() : store.windowAdjust(requests[i]!.key, delta, windowMs, delta < 0 ? result.windows[i]!.entry : undefined)),
    };
  }

  // giveBack returns amount to window i of a lease, out of the lease's own entry there.
  function giveBack(lease: WindowLease, i: number, amount: number, windowMs: number): void {
    if (amount > 0) store.windowAdjust(lease.keys[i]!, -amount, windowMs, lease.entries[i]).catch(noop);
  }

  function endWindowLease(g: GroupState, lease: WindowLease, windowMs: number): void {
    if (!retire(g, lease)) return;
    if (wasted(lease)) shrink(g);
    for (let i = 0; i < lease.keys.length; i++) {
      giveBack(lease, i, lease.free[i]!, windowMs);
      lease.free[i] = 0;
    }
  }


  function leaseTaken(g: GroupState, lease: WindowLease, windowMs: number): Taken {
    return {
      async adjust(i, delta) {
        if (delta === 0) return;
        if (!lease.closed && clock() >= lease.endsAt) endWindowLease(g, lease, windowMs);
        if (!lease.closed) {
          // While the lease lives, its entry holds this request's amount: give back to the lease, or take more from it.
          if (delta < 0) {
            lease.free[i] = lease.free[i]! - delta;
            return;
          }
          if (lease.free[i]! >= delta) {
            lease.free[i] = lease.free[i]! - delta;
            return;
          }
        }
        if (delta < 0) lateGiveBack(lease, i, -delta, windowMs);
        else await store.windowAdjust(lease.keys[i]!, delta, windowMs);
      },
    };
  }

  // lateGiveBack returns what a request gave back after its lease ended, together with the other late
  // give-backs to the lease's entries, leaseMs after the first: requests that outlive their lease (most
  // streams do) would otherwise cost a store call each. Until then the amount stays counted, the safe side.
  // The caller is not kept waiting for it.
  function lateGiveBack(lease: WindowLease, i: number, amount: number, windowMs: number): void {
    if (closed) {
      giveBack(lease, i, amount, windowMs);
      return;
    }
    if (lease.late !== undefined) {
      lease.late[i] = lease.late[i]! + amount;
      return;
    }
    lease.late = lease.keys.map(() => 0);
    lease.late[i] = amount;
    const flush = (): void => {
      clearTimeout(timer);
      pendingFlushes.delete(flush);
      const late = lease.late!;
      lease.late = undefined;
      for (let j = 0; j < late.length; j++) giveBack(lease, j, late[j]!, windowMs);
    };
    const timer = setTimeout(flush, leaseMs);
    timer.unref();
    pendingFlushes.add(flush);
  }

  function renewWindows(g: GroupState, requests: readonly WindowRequest[], windowMs: number): void {
    if (g.renewing || closed || clock() < g.quietUntil) return;
    // At most 1/64 of any limit: a small limit is not leased at all.
    let size = g.size;
    for (const r of requests) if (r.amount > 0) size = Math.min(size, Math.floor(r.limit / LIMIT_SHARE / r.amount));
    if (size < 2) {
      quiet(g);
      return;
    }
    const extras = requests.map((r) => ({ key: r.key, amount: r.amount * size, limit: Math.floor(r.limit / 2) }));
    const sentAt = clock();
    g.renewing = true;
    store.windowsAcquire(extras, windowMs, { usedUpperBound: true, holdMs: leaseMs }).then(
      (result) => {
        g.renewing = false;
        if (!result.allowed || closed) {
          if (result.allowed) for (let i = 0; i < extras.length; i++) store.windowAdjust(extras[i]!.key, -extras[i]!.amount, windowMs, result.windows[i]!.entry).catch(noop);
          // The group is over half full (or closing): ask the store per request for a while.
          quiet(g);
          return;
        }
        const lease: WindowLease = {
          windowMs,
          keys: extras.map((e) => e.key),
          limits: requests.map((r) => r.limit),
          entries: result.windows.map((w) => w.entry ?? { at: 0, seq: 0 }),
          granted: extras.map((e) => e.amount),
          free: extras.map((e) => e.amount),
          used: result.windows.map((w) => w.used),
          // The store timed the entries at its clock's now + leaseMs, and its now came after sentAt.
          endsAt: sentAt + leaseMs,
          size,
          served: 0,
          closed: false,
          replaced: false,
        };
        install(g, lease, (l) => endWindowLease(g, l, windowMs));
      },
      () => quiet(g),
    );
  }

  function sameLimits(lease: WindowLease, requests: readonly WindowRequest[], windowMs: number): boolean {
    if (lease.windowMs !== windowMs || lease.keys.length !== requests.length) return false;
    for (let i = 0; i < requests.length; i++) if (lease.keys[i] !== requests[i]!.key || lease.limits[i] !== requests[i]!.limit) return false;
    return true;
  }

  // Every acquire asks the store: without leases, and when no lease can serve.
  function exactAcquire(requests: readonly WindowRequest[], windowMs: number): Promise<WindowsAdmission> {
    counts.windowsFromStore++;
    return store.windowsAcquire(requests, windowMs, USED_UPPER_BOUND).then((result) => (result.allowed ? { result, taken: exactTaken(requests, windowMs, result) } : { result }));
  }

  function acquireWindows(requests: readonly WindowRequest[], windowMs: number): Promise<WindowsAdmission> {
    // A group is found by its first window's key: the rest, and the limits, are the lease's to check (sameLimits).
    let g = groups.get(requests[0]!.key);
    if (g === undefined) {
      g = { size: LEASE_START, renewing: false, quietUntil: 0 };
      groups.set(requests[0]!.key, g);
    }
    // One clock read per admission: whether the lease is over, and whether it is due for renewal.
    const now = clock();
    if (g.lease !== undefined && now >= g.lease.endsAt) endWindowLease(g, g.lease, windowMs);
    const lease = g.lease;
    if (lease !== undefined && sameLimits(lease, requests, windowMs)) {
      let fits = true;
      for (let i = 0; i < requests.length; i++) if (lease.free[i]! < requests[i]!.amount) fits = false;
      if (fits) {
        let half = false;
        for (let i = 0; i < requests.length; i++) {
          lease.free[i] = lease.free[i]! - requests[i]!.amount;
          if (lease.free[i]! * 2 < lease.granted[i]!) half = true;
        }
        lease.served++;
        // Renewed ahead, so that the next requests find a lease rather than wait for the store.
        if (half || renewalDue(lease, now)) renewWindows(g, requests, windowMs);
        counts.windowsFromLease++;
        return Promise.resolve({
          result: { allowed: true, windows: requests.map((_, i) => ({ allowed: true, used: lease.used[i]!, retryAfterMs: 0 })) },
          taken: leaseTaken(g, lease, windowMs),
        });
      }
    }
    // No lease could serve it: if one was expected (used up, or still on its way), the next is larger.
    if (lease !== undefined || g.renewing) g.missed = true;
    // Issued in the same turn as the exact acquire, after it (it never takes this request's room): with Redis, one round trip for both.
    const acquiring = exactAcquire(requests, windowMs);
    renewWindows(g, requests, windowMs);
    return acquiring;
  }

  // ---- budgets ----

  function endBudgetLease(key: string, b: BudgetState, lease: BudgetLease): void {
    if (!retire(b, lease)) return;
    if (wasted(lease)) shrink(b);
    // The rest of the reservation belongs to requests in flight; each releases its own share.
    if (lease.free > 0n) store.settle(key, lease.id, 0n, lease.ttlMs, lease.free).catch(noop);
    lease.free = 0n;
  }

  function renewBudget(key: string, b: BudgetState, amount: bigint, limit: bigint, leaseLimit: bigint, ttlMs: number, reservationTtlMs: number): void {
    if (b.renewing || closed || clock() < b.quietUntil || amount <= 0n) return;
    const requests = b.size;
    const size = amount * BigInt(requests);
    // Granted only while 63 more such leases would fit after it, and within the soft limit.
    let cap = limit - BigInt(LIMIT_SHARE - 1) * size;
    if (leaseLimit < cap) cap = leaseLimit;
    if (cap < size) {
      quiet(b);
      return;
    }
    const id = `lease-${replicaTag}-${(leaseIds++).toString(36)}`;
    // The reservation outlives the lease by the longest a request it admits may run.
    const heldMs = leaseMs + reservationTtlMs;
    const sentAt = clock();
    b.renewing = true;
    store.reserve(key, id, size, cap, ttlMs, heldMs).then(
      (r) => {
        b.renewing = false;
        if (!r.ok || closed) {
          if (r.ok) store.settle(key, id, 0n, ttlMs).catch(noop);
          quiet(b);
          return;
        }
        const lease: BudgetLease = {
          id,
          free: size,
          granted: size,
          committed: r.committed,
          reserved: r.reserved,
          endsAt: sentAt + leaseMs,
          size: requests,
          served: 0,
          reservedUntil: sentAt + heldMs,
          ttlMs,
          closed: false,
          replaced: false,
        };
        install(b, lease, (l) => endBudgetLease(key, b, l));
      },
      () => quiet(b),
    );
  }

  function leaseSettle(key: string, b: BudgetState, lease: BudgetLease, amount: bigint, ttlMs: number): (actual: bigint) => Promise<void> {
    let settled = false;
    return async (actual) => {
      if (settled) return;
      settled = true;
      if (!lease.closed && clock() >= lease.endsAt) endBudgetLease(key, b, lease);
      // Nothing spent while the lease lives: its share goes back to the lease, not to the store.
      if (actual === 0n && !lease.closed) {
        lease.free += amount;
        return;
      }
      // Spend is recorded at once, and this request's share of the lease released with it.
      await store.settle(key, lease.id, actual, ttlMs, amount);
    };
  }

  // The request's own reservation, settled by its id.
  function exactReserve(key: string, id: string, amount: bigint, limit: bigint, ttlMs: number, reservationTtlMs: number): Promise<BudgetAdmission> {
    counts.budgetsFromStore++;
    return store.reserve(key, id, amount, limit, ttlMs, reservationTtlMs).then((r) => {
      let settled = !r.ok;
      return {
        ok: r.ok,
        committed: r.committed,
        reserved: r.reserved,
        settle(actual: bigint) {
          if (settled) return Promise.resolve();
          settled = true;
          return store.settle(key, id, actual, ttlMs);
        },
      };
    });
  }

  function reserve(key: string, id: string, amount: bigint, limit: bigint, leaseLimit: bigint, ttlMs: number, reservationTtlMs: number): Promise<BudgetAdmission> {
    let b = budgets.get(key);
    if (b === undefined) {
      b = { size: LEASE_START, renewing: false, quietUntil: 0 };
      budgets.set(key, b);
    }
    const now = clock();
    let lease = b.lease;
    if (lease !== undefined && now >= lease.endsAt) {
      endBudgetLease(key, b, lease);
      lease = undefined;
    }
    // A request that may run longer than the lease's reservation lasts asks the store.
    if (lease !== undefined && now + reservationTtlMs <= lease.reservedUntil) {
      if (lease.free >= amount) {
        lease.free -= amount;
        lease.served++;
        if (lease.free * 2n < lease.granted || renewalDue(lease, now)) renewBudget(key, b, amount, limit, leaseLimit, ttlMs, reservationTtlMs);
        counts.budgetsFromLease++;
        return Promise.resolve({ ok: true, committed: lease.committed, reserved: lease.reserved, settle: leaseSettle(key, b, lease, amount, ttlMs) });
      }
    }
    // No lease could serve it: if one was expected (used up, or still on its way), the next is larger.
    if (lease !== undefined || b.renewing) b.missed = true;
    const reserving = exactReserve(key, id, amount, limit, ttlMs, reservationTtlMs);
    // In the same turn, after the request's own reservation: with Redis, one round trip for both.
    renewBudget(key, b, amount, limit, leaseLimit, ttlMs, reservationTtlMs);
    return reserving;
  }

  return {
    acquireWindows: leaseMs > 0 ? acquireWindows : exactAcquire,
    reserve: leaseMs > 0 ? reserve : (key, id, amount, limit, _leaseLimit, ttlMs, reservationTtlMs) => exactReserve(key, id, amount, limit, ttlMs, reservationTtlMs),
    stats: () => ({ ...counts }),
    async close() {
      closed = true;
      for (const lease of [...open]) lease.end?.();
      for (const flush of [...pendingFlushes]) flush();
      // Their give-backs were issued above: the store sends them before it closes.
      groups.clear();
      budgets.clear();
    },
  };
}

const leasesByStore = new WeakMap<StateStore, Leases>();

/** leasesOf returns the leases of a store (one set per store, created on first use). */
export function leasesOf(store: StateStore): Leases {
  let leases = leasesByStore.get(store);
  if (leases === undefined) {
    leases = createLeases(store);
    leasesByStore.set(store, leases);
  }
  return leases;
}
