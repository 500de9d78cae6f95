/** The README as tests read it: its sections by heading, and the fenced blocks in a section. */
import { readFileSync } from "node:fs";

export const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** The README's section that starts with `heading`, up to the next heading of its level or above. */
export function section(heading: string): string {
  const start = README.indexOf(`${heading}\n`);
  if (start === -1) throw new Error(`README has no ${heading}`);
  const level = heading.split(" ")[0]!;
  const next = new RegExp(`\n#{1,${level.length}} `, "g");
  next.lastIndex = start + heading.length;
  return README.slice(start, next.exec(README)?.index);
}

/** The fenced blocks of `text`, in order, with their language ("" when none). */
export const blocksOf = (text: string) => [...text.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]! }));
