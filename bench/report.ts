import type { Spread } from "./stats.js";

/**
 * The report: sections of rows, each row a figure with one cell per column
 * (a target, or a comparison such as "gateway − floor"), rendered as
 * markdown tables, plus the targets evaluated as met / not met.
 * Cells hold a Spread over rounds and render as "median (min–max)".
 */

/** Unit is how a cell's numbers are shown. */
export type Unit = "ms" | "µs" | "req/s" | "MB" | "×" | "%" | "count";

/** Cell is one value in a table: a spread over rounds, or a text (such as "not measured"). */
export interface Cell {
  value?: Spread;
  unit?: Unit;
  /** signed shows a leading + on positive values (for differences). */
  signed?: boolean;
  text?: string;
}

/** Goal is one of the targets, evaluated. */
export interface Goal {
  /** target is the wording, such as "added p50 ≤ 0.3 ms". */
  target: string;
  /** measured is the value compared, as text. */
  measured: string;
  /** met is undefined when the figure was not measured. */
  met: boolean | undefined;
}

/** Row is one figure. */
export interface Row {
  figure: string;
  cells: Record<string, Cell | undefined>;
  goal?: Goal;
}

/** Column is a table column after the figure name. */
export interface Column {
  key: string;
  label: string;
}

/** Section is one part of the report. */
export interface Section {
  id: string;
  title: string;
  columns: Column[];
  rows: Row[];
  /** notes are printed under the table: method, caveats, what was not measured and why. */
  notes: string[];
  /** raw is the per-round data, kept in the JSON output. */
  raw?: unknown;
}

function digits(v: number, unit: Unit | undefined): string {
  const a = Math.abs(v);
  switch (unit) {
    case "ms":
      return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(3);
    case "µs":
    case "req/s":
    case "count":
      return a >= 100 ? v.toFixed(0) : v.toFixed(1);
    case "MB":
      return v.toFixed(1);
    case "×":
      return v.toFixed(2);
    case "%":
      return v.toFixed(1);
    default:
      return String(v);
  }
}

/** formatNumber renders one number in a unit, with a sign when asked. */
export function formatNumber(v: number, unit: Unit | undefined, signed = false): string {
  if (Number.isNaN(v)) return "n/a";
  const s = digits(v, unit);
  return signed && v > 0 ? `+${s}` : s;
}

function suffix(unit: Unit | undefined): string {
  if (unit === undefined || unit === "count") return "";
  if (unit === "×") return "×";
  if (unit === "%") return "%";
  return ` ${unit}`;
}

/** formatCell renders a cell: "0.312 ms (0.290–0.350)" or its text. */
export function formatCell(cell: Cell | undefined): string {
  if (cell === undefined) return "";
  if (cell.text !== undefined) return cell.text;
  const v = cell.value;
  if (v === undefined || v.rounds === 0) return "n/a";
  const main = `${formatNumber(v.median, cell.unit, cell.signed)}${suffix(cell.unit)}`;
  if (v.rounds < 2) return main;
  return `${main} (${formatNumber(v.min, cell.unit, cell.signed)}…${formatNumber(v.max, cell.unit, cell.signed)})`;
}

/** goalAtMost evaluates "value ≤ limit" on a spread's median. */
export function goalAtMost(target: string, value: Spread | undefined, limit: number, unit: Unit, signed = false): Goal {
  if (value === undefined || value.rounds === 0 || Number.isNaN(value.median)) return { target, measured: "not measured", met: undefined };
  return { target, measured: `${formatNumber(value.median, unit, signed)}${suffix(unit)}`, met: value.median <= limit };
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** renderSection renders one section as a markdown table with its notes. */
export function renderSection(section: Section): string {
  const hasGoals = section.rows.some((r) => r.goal !== undefined);
  const header = ["Figure", ...section.columns.map((c) => c.label), ...(hasGoals ? ["Target"] : [])];
  const lines = [`### ${section.title}`, "", `| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  for (const row of section.rows) {
    const cells = [row.figure, ...section.columns.map((c) => formatCell(row.cells[c.key]))];
    if (hasGoals) cells.push(row.goal === undefined ? "" : `${row.goal.target}: ${goalStatus(row.goal)}`);
    lines.push(`| ${cells.map(escapeCell).join(" | ")} |`);
  }
  if (section.notes.length > 0) {
    lines.push("");
    for (const n of section.notes) lines.push(`- ${n}`);
  }
  return lines.join("\n");
}

/** goalStatus is "met", "NOT met" or "not measured". */
export function goalStatus(goal: Goal): string {
  return goal.met === undefined ? "not measured" : goal.met ? "met" : "**NOT met**";
}

/** ReportMeta describes the run in the report's header. */
export interface ReportMeta {
  startedAt: string;
  durationS: number;
  mode: "quick" | "full";
  node: string;
  cpus: string;
  /** loadAvg is the 1/5/15-minute load average at start and end (other work on the machine shows here). */
  loadAvg: string;
  pinning: string;
  commit: string;
  notes: string[];
}

/** renderReport renders the whole markdown report. */
export function renderReport(meta: ReportMeta, sections: readonly Section[]): string {
  const goals = sections.flatMap((s) => s.rows.flatMap((r) => (r.goal === undefined ? [] : [{ section: s.title, goal: r.goal }])));
  const lines = [
    `## llm-gateway benchmark — ${meta.startedAt} (${meta.mode} run, ${meta.durationS.toFixed(0)} s)`,
    "",
    `Node ${meta.node} · ${meta.cpus} · load average ${meta.loadAvg} · ${meta.pinning} · commit ${meta.commit}`,
    "",
    "Figures are the median over interleaved rounds, with the range over rounds in parentheses. " +
      "Differences (gateway − floor) are taken per round, then summarized. The machine is shared: quote ratios and differences, not absolutes.",
  ];
  if (meta.mode === "quick") lines.push("", "**Quick run: rounds are too short for these figures to be quoted.**");
  for (const n of meta.notes) lines.push("", `> ${n}`);
  if (goals.length > 0) {
    lines.push("", "### Targets (issue 6)", "", "| Target | Measured | Status |", "|---|---|---|");
    for (const { goal } of goals) lines.push(`| ${escapeCell(goal.target)} | ${escapeCell(goal.measured)} | ${goalStatus(goal)} |`);
  }
  for (const s of sections) lines.push("", renderSection(s));
  return `${lines.join("\n")}\n`;
}
