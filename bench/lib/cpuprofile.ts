/**
 * Reads V8 .cpuprofile files (node --cpu-prof) and lists where the time went: the functions with
 * the most self time, summed over the profiles in a directory, with their file and line.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

/** The `top` functions by self time over every .cpuprofile in `dir`, as aligned text lines. */
export function profileSummary(dir: string, top = 20): string {
  if (!existsSync(dir)) return `(no profiles in ${dir})`;
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  const self = new Map<string, number>();
  let total = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), "utf8")) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const samples = p.samples ?? [];
    const deltas = p.timeDeltas ?? [];
    for (let i = 0; i < samples.length; i++) {
      const node = byId.get(samples[i]!);
      if (!node) continue;
      const us = Math.max(0, deltas[i] ?? 0);
      const { functionName, url, lineNumber } = node.callFrame;
      const where = url ? `${url.startsWith("file://") ? relative(process.cwd(), url.slice(7)) : url}:${lineNumber + 1}` : "";
      const key = `${functionName || "(anonymous)"} ${where}`.trim();
      self.set(key, (self.get(key) ?? 0) + us);
      total += us;
    }
  }
  if (total === 0) return `(empty profiles in ${dir})`;
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`)
    .join("\n");
}
