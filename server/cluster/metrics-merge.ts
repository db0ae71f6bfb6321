/**
 * One Prometheus exposition out of several workers' own: every sample gets
 * a `worker` label (the worker's slot), and each metric family's lines stay
 * together under one HELP and TYPE, as the text format requires.
 *
 * Samples are labelled rather than summed: a worker's counters restart from
 * zero when the worker is restarted, and only per-worker series let
 * Prometheus see that as a counter reset (`sum without (worker) (rate(…))`
 * gives the gateway's total); process gauges such as RSS or event-loop lag
 * mean nothing summed.
 */

/** WorkerExposition is one worker's exposition text and its slot. */
export interface WorkerExposition {
  worker: number;
  text: string;
}

interface Family {
  help?: string;
  type?: string;
  samples: string[];
}

// `# HELP name …` or `# TYPE name …`: the family is the second word.
const meta = /^#\s+(HELP|TYPE)\s+(\S+)/;

/** withWorker adds worker="N" as the first label of one sample line. */
function withWorker(line: string, worker: number): string {
  const label = `worker="${worker}"`;
  // A metric name holds neither "{" nor blanks; the first of them ends it.
  const brace = line.indexOf("{");
  const blank = line.search(/\s/);
  if (brace >= 0 && (blank < 0 || brace < blank)) {
    const empty = line[brace + 1] === "}";
    return `${line.slice(0, brace + 1)}${label}${empty ? "" : ","}${line.slice(brace + 1)}`;
  }
  if (blank < 0) return line;
  return `${line.slice(0, blank)}{${label}}${line.slice(blank)}`;
}

/**
 * mergeExpositions merges workers' expositions into one: families in the
 * order they first appear, each with its HELP and TYPE once and then every
 * worker's samples, labelled with the worker. A sample that comes before
 * any HELP or TYPE line forms a family of its own name.
 */
export function mergeExpositions(parts: readonly WorkerExposition[]): string {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const part of parts) {
    let current: Family | undefined;
    for (const line of part.text.split("\n")) {
      if (line.trim() === "") continue;
      const m = meta.exec(line);
      if (m !== null) {
        current = family(m[2]!);
        if (m[1] === "HELP") current.help ??= line;
        else current.type ??= line;
        continue;
      }
      // Other comments carry nothing a scraper reads.
      if (line.startsWith("#")) continue;
      const owner = current ?? family(line.split(/[\s{]/, 1)[0]!);
      owner.samples.push(withWorker(line, part.worker));
    }
  }
  const out: string[] = [];
  for (const f of families.values()) {
    if (f.help !== undefined) out.push(f.help);
    if (f.type !== undefined) out.push(f.type);
    out.push(...f.samples);
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`;
}
