import type { Worker } from "node:cluster";
import { family } from "../telemetry/request-metrics.js";
import { mergeExpositions, type WorkerExposition } from "./metrics-merge.js";

/**
 * /metrics for `--workers N`: a scrape reaches one worker (the primary hands
 * out connections round-robin), yet must show the whole gateway. The worker
 * that takes the scrape asks the primary; the primary asks every running
 * worker for its own exposition, merges them (metrics-merge.ts: each sample
 * labelled with its worker) and answers. A worker that does not answer
 * within GATHER_TIMEOUT_MS is left out of that scrape, and
 * llm_gateway_workers_scraped says so. Should the primary not answer (it is
 * gone), the worker serves its own metrics, still labelled.
 */

/** GATHER_TIMEOUT_MS bounds the primary's wait for the workers' parts. */
export const GATHER_TIMEOUT_MS = 1_500;
/** SCRAPE_TIMEOUT_MS bounds a worker's wait for the primary's merged answer. */
export const SCRAPE_TIMEOUT_MS = 3_000;

const SCRAPE = "llm-gateway:metrics-scrape";
const COLLECT = "llm-gateway:metrics-collect";
const PART = "llm-gateway:metrics-part";
const MERGED = "llm-gateway:metrics-merged";

interface Message {
  type: string;
  id: number;
  text?: string;
}

function isMessage(m: unknown, type: string): m is Message {
  return typeof m === "object" && m !== null && (m as Message).type === type && typeof (m as Message).id === "number";
}

/** WorkerMetrics is a worker's side: scrape() returns every worker's metrics, merged. */
export interface WorkerMetrics {
  scrape(): Promise<string>;
  /** stop stops answering the primary and fails nothing in flight (pending scrapes fall back to local metrics). */
  stop(): void;
}

/**
 * joinClusterMetrics sets up a worker's side: it answers the primary's
 * requests for this worker's exposition with render(), and scrape() asks
 * the primary for the merged one. worker is this worker's slot.
 */
export function joinClusterMetrics(worker: number, render: () => Promise<string>): WorkerMetrics {
  let nextId = 1;
  const pending = new Map<number, (text: string | undefined) => void>();
  const local = async () => mergeExpositions([{ worker, text: await render() }]);

  const onMessage = (m: unknown): void => {
    if (isMessage(m, COLLECT)) {
      render().then(
        (text) => process.send?.({ type: PART, id: m.id, text } satisfies Message),
        // An exposition that cannot be rendered is left out of the scrape; the primary's count shows it.
        () => undefined,
      );
    } else if (isMessage(m, MERGED)) {
      pending.get(m.id)?.(m.text);
    }
  };
  process.on("message", onMessage);

  return {
    async scrape() {
      const send = process.send?.bind(process);
      if (send === undefined || !process.connected) return local();
      const id = nextId++;
      const merged = await new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => done(undefined), SCRAPE_TIMEOUT_MS);
        const done = (text: string | undefined) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(text);
        };
        pending.set(id, done);
        try {
          send({ type: SCRAPE, id } satisfies Message);
        } catch {
          done(undefined);
        }
      });
      return merged ?? local();
    },
    stop() {
      process.off("message", onMessage);
      for (const done of [...pending.values()]) done(undefined);
    },
  };
}

/** RunningWorker is a worker the primary may ask, with its slot. */
export interface RunningWorker {
  slot: number;
  worker: Worker;
}

/** MetricsGatherer is the primary's side. */
export interface MetricsGatherer {
  /** onMessage handles a message from a worker; it returns false for messages that are not about metrics. */
  onMessage(from: Worker, message: unknown): boolean;
}

/**
 * createMetricsGatherer builds the primary's side: running() lists the
 * workers to ask (the ready ones), configured is --workers.
 */
export function createMetricsGatherer(running: () => RunningWorker[], configured: number): MetricsGatherer {
  let nextId = 1;
  const gathering = new Map<number, (slot: number, text: string) => void>();

  function gather(): Promise<WorkerExposition[]> {
    const asked = running();
    const id = nextId++;
    return new Promise((resolve) => {
      const parts: WorkerExposition[] = [];
      const waiting = new Set(asked.map((w) => w.slot));
      const finish = () => {
        clearTimeout(timer);
        gathering.delete(id);
        resolve(parts.sort((a, b) => a.worker - b.worker));
      };
      const timer = setTimeout(finish, GATHER_TIMEOUT_MS);
      gathering.set(id, (slot, text) => {
        if (!waiting.delete(slot)) return;
        parts.push({ worker: slot, text });
        if (waiting.size === 0) finish();
      });
      for (const w of asked) {
        try {
          w.worker.send({ type: COLLECT, id } satisfies Message);
        } catch {
          waiting.delete(w.slot);
        }
      }
      if (waiting.size === 0) finish();
    });
  }

  function slotOf(worker: Worker): number | undefined {
    return running().find((w) => w.worker === worker)?.slot;
  }

  return {
    onMessage(from, message) {
      if (isMessage(message, PART)) {
        const slot = slotOf(from);
        if (slot !== undefined && typeof message.text === "string") gathering.get(message.id)?.(slot, message.text);
        return true;
      }
      if (!isMessage(message, SCRAPE)) return false;
      void gather().then((parts) => {
        const summary: string[] = [];
        family(summary, "llm_gateway_workers", "gauge", "Workers the primary keeps running (--workers).");
        summary.push(`llm_gateway_workers ${configured}`);
        family(
          summary,
          "llm_gateway_workers_scraped",
          "gauge",
          "Workers whose metrics this scrape holds; fewer than llm_gateway_workers when some were restarting or did not answer in time.",
        );
        summary.push(`llm_gateway_workers_scraped ${parts.length}`, "");
        if (!from.isConnected()) return;
        try {
          from.send({ type: MERGED, id: message.id, text: summary.join("\n") + mergeExpositions(parts) } satisfies Message);
        } catch {
          // The asking worker went away; its scrape failed with it.
        }
      });
      return true;
    },
  };
}
