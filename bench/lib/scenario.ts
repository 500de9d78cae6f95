/** What each part of `npm run bench` returns, and how bench/run.ts prints it. */
export interface ScenarioResult {
  title: string;
  /** A markdown table: either header and rows, or already rendered in `markdown`. */
  header?: string[];
  rows?: string[][];
  markdown?: string;
  /** Sentences printed under the table: the load, how the figures are taken. */
  notes?: string[];
  /** Each target missed, as a sentence with the figure and the target. */
  missed: string[];
}

export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map((c) => String(c).replace(/\|/g, "\\|")).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

export function renderScenario(r: ScenarioResult): string {
  const table = r.markdown ?? markdownTable(r.header ?? [], r.rows ?? []);
  const parts = [`### ${r.title}`, "", table];
  if (r.notes?.length) parts.push("", ...r.notes);
  parts.push("", r.missed.length === 0 ? "Targets: all met." : `Targets missed:\n${r.missed.map((m) => `- ${m}`).join("\n")}`);
  return parts.join("\n");
}
