/**
 * Output for people: colours, relative times, tables that fit the width, and the views of a
 * decision, a vote and a verdict. Pure functions of their arguments (the clock and the painter are
 * passed in), so that tests can check them without a terminal.
 */
import {
  DecisionStatus,
  DecisionType,
  Effort,
  FailurePolicy,
  ImpactLevel,
  Outcome,
  ReviewerRole,
  RiskLevel,
  VerdictType,
  VoteType,
  type Decision,
  type Verdict,
  type Vote,
} from "../clients/typescript/src/gen/council/v1/review.js";
import type { Duration } from "../clients/typescript/src/gen/google/protobuf/duration.js";
import { statusOf } from "../clients/typescript/src/guard.js";

/** Widest output for people: wider terminals still get 100 columns, narrower ones their width. */
export const MAX_WIDTH = 100;

/** Paints text with ANSI colours, or leaves it alone when colours are off. */
export interface Painter {
  readonly enabled: boolean;
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const sgr = (open: number, close: number) => (text: string) => (text ? `\u001b[${open}m${text}\u001b[${close}m` : text);
const same = (text: string) => text;

export function painter(enabled: boolean): Painter {
  if (!enabled) return { enabled, green: same, red: same, yellow: same, cyan: same, dim: same, bold: same };
  return { enabled, green: sgr(32, 39), red: sgr(31, 39), yellow: sgr(33, 39), cyan: sgr(36, 39), dim: sgr(2, 22), bold: sgr(1, 22) };
}

/**
 * Colours go to a terminal only, and never when NO_COLOR is set to anything (no-color.org) or
 * TERM is `dumb`. FORCE_COLOR (set, and not `0`) turns them on for a pipe, e.g. `| less -R`.
 */
export function colourWanted(isTty: boolean, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "" && env.FORCE_COLOR !== "0") return true;
  return isTty && env.TERM !== "dumb";
}

/** The width of output for people: a terminal's own width if narrower than MAX_WIDTH. */
export function outputWidth(columns: number | undefined): number {
  return columns && columns >= 40 ? Math.min(columns, MAX_WIDTH) : MAX_WIDTH;
}

/** Characters as a terminal counts them (one per code point; no escapes in our cells). */
const length = (text: string) => [...text].length;

/** One line of text: whitespace runs (newlines included) become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** `text` cut to `width` characters, ending with `…` when something was cut. */
export function cut(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  if (width <= 0) return "";
  return `${chars.slice(0, width - 1).join("")}…`;
}

/** Words of `text` in lines of at most `width` characters (a longer word is cut). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split(/\n+/)) {
    let line = "";
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      const w = cut(word, width);
      if (!line) line = w;
      else if (length(line) + 1 + length(w) <= width) line += ` ${w}`;
      else {
        lines.push(line);
        line = w;
      }
    }
    if (line) lines.push(line);
  }
  return lines;
}

/**
 * How long ago (or how far ahead) `at` is, the way people say it: `just now`, `45 s ago`,
 * `3 min ago`, `5 h ago`, `2 d ago`, `in 23 h`; past 60 days, the date.
 */
export function relativeTime(at: Date | undefined, now: Date): string {
  if (!at) return "-";
  const ms = at.getTime() - now.getTime();
  // Whole seconds, rounded down, so that an expiry 59 min 59.6 s away reads "in 59 min", not "in 1 h".
  const s = Math.floor(Math.abs(ms) / 1000);
  if (s < 5) return "just now";
  let amount: string;
  if (s < 60) amount = `${s} s`;
  else if (s < 3600) amount = `${Math.floor(s / 60)} min`;
  else if (s < 48 * 3600) amount = `${Math.floor(s / 3600)} h`;
  else if (s < 60 * 86_400) amount = `${Math.floor(s / 86_400)} d`;
  else return at.toISOString().slice(0, 10);
  return ms >= 0 ? `in ${amount}` : `${amount} ago`;
}

/** An enum value's name without its prefix: DECISION_TYPE_HUMAN_APPROVE is HUMAN_APPROVE. */
function name(names: Record<number, string>, value: number, prefix: string): string {
  const full = names[value];
  if (full === undefined || full === "UNRECOGNIZED") return String(value);
  return full.startsWith(prefix) ? full.slice(prefix.length) : full;
}

export const decisionTypeName = (v: DecisionType) => name(DecisionType, v, "DECISION_TYPE_");
export const statusName = (v: DecisionStatus) => name(DecisionStatus, v, "DECISION_STATUS_");
export const voteName = (v: VoteType) => name(VoteType, v, "VOTE_TYPE_");
export const roleName = (v: ReviewerRole) => name(ReviewerRole, v, "REVIEWER_ROLE_");
export const verdictName = (v: VerdictType) => name(VerdictType, v, "VERDICT_TYPE_");
export const outcomeName = (v: Outcome) => name(Outcome, v, "OUTCOME_");
export const riskName = (v: RiskLevel) => name(RiskLevel, v, "RISK_LEVEL_");
export const impactName = (v: ImpactLevel) => name(ImpactLevel, v, "IMPACT_LEVEL_");
export const effortName = (v: Effort) => name(Effort, v, "EFFORT_");
/** A failure policy as policies spell it: `needs_more_info`, `reject`, … */
export const failurePolicyName = (v: FailurePolicy) => name(FailurePolicy, v, "FAILURE_POLICY_").toLowerCase();

/** A duration as policies write it: `5s`, `1.5s`, `250ms`; `-` when absent. */
export function durationText(d: Duration | undefined): string {
  if (!d) return "-";
  const ms = d.seconds * 1000 + Math.round(d.nanos / 1e6);
  return ms < 1000 ? `${ms}ms` : `${+(ms / 1000).toFixed(3)}s`;
}

/** A duration in the proto JSON mapping: seconds with 0, 3, 6 or 9 decimals, then `s` (`5s`, `0.500s`). */
export function durationJson(d: Duration): string {
  if (d.nanos === 0) return `${d.seconds}s`;
  const sign = d.seconds < 0 || d.nanos < 0 ? "-" : "";
  let fraction = String(Math.abs(d.nanos)).padStart(9, "0");
  while (fraction.endsWith("000")) fraction = fraction.slice(0, -3);
  return `${sign}${Math.abs(d.seconds)}.${fraction}s`;
}

/** A cell of a table: its text, and how to paint it once it is cut and padded. */
export interface Cell {
  text: string;
  paint?: (text: string) => string;
}

export interface Column {
  header: string;
  /**
   * Not cut below this many characters unless the width leaves no choice (default: the header's
   * length; Infinity: never cut, for ids that people copy).
   */
  min?: number;
  /** Never wider than this. */
  max?: number;
  /** Takes what the other columns leave, and is cut first. */
  flex?: boolean;
  align?: "right";
}

const GAP = "  ";

/**
 * A table in `width` columns: a header line, then one line per row. Columns are as wide as their
 * longest cell; when the table is too wide, the flexible columns are cut first (text ends in
 * `…`), then the others, each down to its minimum.
 */
export function table(columns: Column[], rows: (Cell | string)[][], width: number, paint: Painter): string[] {
  const cells = rows.map((row) => row.map((c) => (typeof c === "string" ? { text: oneLine(c) } : { ...c, text: oneLine(c.text) })));
  const widths = columns.map((col, i) =>
    Math.min(col.max ?? Infinity, Math.max(length(col.header), ...cells.map((r) => length(r[i]?.text ?? "")))),
  );
  const mins = columns.map((col, i) => Math.min(widths[i]!, col.min ?? length(col.header)));
  let excess = widths.reduce((a, b) => a + b, 0) + GAP.length * (columns.length - 1) - width;
  // Down to each minimum, flexible columns first; on a very narrow terminal, below the minimums
  // too (to one character), so that only columns that are never cut (ids) can overflow.
  for (const floor of [mins, columns.map((col, i) => (col.min === Infinity ? widths[i]! : 1))]) {
    for (const flexFirst of [true, false]) {
      for (let i = columns.length - 1; i >= 0 && excess > 0; i--) {
        if (Boolean(columns[i]!.flex) !== flexFirst) continue;
        const take = Math.max(0, Math.min(excess, widths[i]! - floor[i]!));
        widths[i]! -= take;
        excess -= take;
      }
    }
  }
  const line = (row: Cell[], header: boolean) =>
    row
      .map((cell, i) => {
        const w = widths[i]!;
        const text = cut(cell.text, w);
        const last = i === row.length - 1;
        const pad = " ".repeat(Math.max(0, w - length(text)));
        const painted = header ? paint.bold(text) : cell.paint ? cell.paint(text) : text;
        if (columns[i]!.align === "right") return pad + painted;
        return last ? painted : painted + pad;
      })
      .join(GAP)
      .trimEnd();
  return [line(columns.map((c) => ({ text: c.header })), true), ...cells.map((r) => line(r, false))];
}

/** Lines of `label  value` pairs, the labels padded to one width, values wrapped to `width`. */
export function fields(pairs: [string, string | string[]][], width: number, paint: Painter): string[] {
  const labelWidth = Math.max(...pairs.map(([l]) => length(l)));
  const out: string[] = [];
  for (const [label, value] of pairs) {
    const values = Array.isArray(value) ? value : [value];
    const lines = values.flatMap((v) => wrap(v, width - labelWidth - GAP.length));
    lines.forEach((l, i) => out.push(`${i === 0 ? paint.dim(label.padEnd(labelWidth)) : " ".repeat(labelWidth)}${GAP}${l}`));
    if (lines.length === 0) out.push(paint.dim(label));
  }
  return out;
}

export function paintStatus(status: DecisionStatus, p: Painter): (text: string) => string {
  switch (status) {
    case DecisionStatus.DECISION_STATUS_APPROVED:
      return p.green;
    case DecisionStatus.DECISION_STATUS_REJECTED:
      return p.red;
    case DecisionStatus.DECISION_STATUS_PENDING:
      return p.yellow;
    default:
      return p.dim;
  }
}

export function paintType(type: DecisionType, p: Painter): (text: string) => string {
  switch (type) {
    case DecisionType.DECISION_TYPE_AUTO_APPROVE:
      return p.green;
    case DecisionType.DECISION_TYPE_REJECT:
      return p.red;
    case DecisionType.DECISION_TYPE_HUMAN_APPROVE:
      return p.cyan;
    default:
      return p.yellow;
  }
}

export function paintVote(vote: VoteType, p: Painter): (text: string) => string {
  switch (vote) {
    case VoteType.VOTE_TYPE_APPROVE:
      return p.green;
    case VoteType.VOTE_TYPE_REJECT:
      return p.red;
    case VoteType.VOTE_TYPE_NEEDS_MORE_INFO:
      return p.yellow;
    default:
      return p.dim;
  }
}

export function paintVerdict(verdict: VerdictType, p: Painter): (text: string) => string {
  return verdict === VerdictType.VERDICT_TYPE_APPROVE ? p.green : verdict === VerdictType.VERDICT_TYPE_REJECT ? p.red : same;
}

/** How many approvals a decision has: verdicts that approve. */
export const approvals = (d: Decision) => d.verdicts.filter((v) => v.verdict === VerdictType.VERDICT_TYPE_APPROVE).length;

/**
 * Where a decision stands with people, in a few words: `1 of 2 approvals, expires in 23 h` while
 * pending; after, who settled it (`approved by alice, bob`, `rejected by carol`), or how it ended.
 */
export function standing(d: Decision, now: Date): string {
  const status = statusOf(d);
  const by = (v: VerdictType) =>
    d.verdicts
      .filter((x) => x.verdict === v)
      .map((x) => x.by)
      .join(", ");
  switch (status) {
    case DecisionStatus.DECISION_STATUS_PENDING: {
      const expires = d.expiresAt ? `, expires ${relativeTime(d.expiresAt, now)}` : "";
      return `${approvals(d)} of ${d.approvalsRequired} approvals${expires}`;
    }
    case DecisionStatus.DECISION_STATUS_APPROVED:
      return approvals(d) === 0 ? "auto-approved by the council" : `approved by ${by(VerdictType.VERDICT_TYPE_APPROVE)}`;
    case DecisionStatus.DECISION_STATUS_REJECTED:
      return d.verdicts.some((v) => v.verdict === VerdictType.VERDICT_TYPE_REJECT)
        ? `rejected by ${by(VerdictType.VERDICT_TYPE_REJECT)}`
        : "rejected by the council";
    case DecisionStatus.DECISION_STATUS_EXPIRED:
      return `expired ${relativeTime(d.expiresAt, now)} with ${approvals(d)} of ${d.approvalsRequired} approvals`;
    case DecisionStatus.DECISION_STATUS_SUPERSEDED:
      return `superseded by ${d.supersededBy || "a later review"}`;
    default:
      return "";
  }
}

/** The columns of a vote, fixed so that votes line up as they stream in one by one. */
const VOTE_COLUMNS = { role: 12, vote: 15, confidence: 4 };

/**
 * A vote: role, vote, confidence, then its reasoning (and veto), cut to one line of `width` (who
 * cast it in brackets first, unless the built-in rules did), or with `full` wrapped onto more lines
 * under the reasoning column, and a last line saying who cast it (`cast by rules`, a reviewer's
 * name, `fallback:…`; none from a server that does not say).
 */
export function voteLines(v: Vote, width: number, p: Painter, indent = "  ", full = false): string[] {
  const role = roleName(v.reviewerRole).padEnd(VOTE_COLUMNS.role);
  const vote = voteName(v.vote).padEnd(VOTE_COLUMNS.vote);
  const confidence = v.confidence.toFixed(2).padStart(VOTE_COLUMNS.confidence);
  const head = `${indent}${role}${GAP}${vote}${GAP}${confidence}${GAP}`;
  const room = Math.max(10, width - length(head));
  // On one line (votes as they stream in), a vote not cast by the built-in rules names who cast it
  // first: a reviewer agent's principal, or `fallback:<policy>`.
  const by = !full && v.castBy && v.castBy !== "rules" ? `[${v.castBy}] ` : "";
  const text = oneLine(`${by}${v.veto ? `VETO ${v.veto}: ${v.reasoning}` : v.reasoning}`);
  const reasoning = full ? wrap(text, room) : [cut(text, room)];
  const paintText = v.veto ? p.red : same;
  const castBy = full && v.castBy ? [`${" ".repeat(length(head))}${p.dim(cut(oneLine(`cast by ${v.castBy}`), room))}`] : [];
  return [
    `${indent}${p.bold(role)}${GAP}${paintVote(v.vote, p)(vote)}${GAP}${confidence}${GAP}${paintText(reasoning[0] ?? "")}`.trimEnd(),
    ...reasoning.slice(1).map((l) => `${" ".repeat(length(head))}${paintText(l)}`),
    ...castBy,
  ];
}

/** One line for a vote (see voteLines). */
export function voteLine(v: Vote, width: number, p: Painter, indent = "  "): string {
  return voteLines(v, width, p, indent)[0]!;
}

/** One line for a verdict: who, approve or reject, when, and the comment. */
export function verdictLine(v: Verdict, width: number, p: Painter, now: Date, indent = "  "): string {
  const head = `${indent}${v.by}  ${verdictName(v.verdict)}  ${relativeTime(v.givenAt, now)}`;
  const comment = v.comment ? `  ${cut(JSON.stringify(oneLine(v.comment)), width - length(head) - 2)}` : "";
  return `${indent}${p.bold(v.by)}  ${paintVerdict(v.verdict, p)(verdictName(v.verdict))}  ${p.dim(relativeTime(v.givenAt, now))}${comment}`;
}

/**
 * The headline of a decision in one line of `width`: id, council decision, status, and `tail`
 * (by default where it stands with people), cut to fit.
 */
export function headline(d: Decision, p: Painter, now: Date, width = MAX_WIDTH, tail = standing(d, now)): string {
  const status = statusOf(d);
  const type = decisionTypeName(d.decision);
  const state = statusName(status);
  const room = width - length(`${d.id}${GAP}${type}${GAP}${state}${GAP}`);
  const rest = tail ? `${GAP}${cut(oneLine(tail), Math.max(8, room))}` : "";
  return `${p.bold(d.id)}${GAP}${paintType(d.decision, p)(type)}${GAP}${paintStatus(status, p)(state)}${rest}`;
}

/** A decision for people: the headline, the suggestion, the votes, concerns, conditions, verdicts, outcome. */
export function decisionView(d: Decision, width: number, p: Painter, now: Date): string[] {
  const s = d.suggestion;
  const out: string[] = [headline(d, p, now, width), ""];
  const about: [string, string | string[]][] = [];
  if (s) {
    about.push(["Suggestion", `${s.id}: ${oneLine(s.title)}`]);
    const effort = s.estimatedEffort === Effort.EFFORT_UNSPECIFIED ? "" : ` · effort ${effortName(s.estimatedEffort)}`;
    about.push(["", `risk ${riskName(s.risk)} · impact ${impactName(s.impact)}${effort} · ${s.autoFixable ? "auto-fixable" : "not auto-fixable"}`]);
    if (s.description) about.push(["Description", s.description]);
    if (s.filesAffected.length) about.push(["Files", s.filesAffected.join(", ")]);
    if (s.diff) {
      // The diff itself can be long: its size here, the whole of it with -o json. A last line
      // counts whether or not it ends with a newline.
      const lines = s.diff.split("\n").length - (s.diff.endsWith("\n") ? 1 : 0);
      about.push(["Diff", `${lines} lines, ${Buffer.byteLength(s.diff)} bytes (-o json shows it)`]);
    }
  } else {
    about.push(["Suggestion", d.suggestionId]);
  }
  about.push(["Decided", `${relativeTime(d.decidedAt, now)}${d.decidedAt ? ` (${d.decidedAt.toISOString()})` : ""}`]);
  if (d.submittedBy) about.push(["Submitted by", d.submittedBy]);
  about.push(["Policy", d.policyVersion]);
  about.push(["Reasoning", d.finalReasoning]);
  if (d.supersedes) about.push(["Follows up", d.supersedes]);
  if (d.supersededBy) about.push(["Superseded by", d.supersededBy]);
  out.push(...fields(about, width, p));

  out.push("", p.bold(`Votes (${d.votes.length})`));
  for (const v of d.votes) out.push(...voteLines(v, width, p, "  ", true));
  const concerns = d.votes.flatMap((v) => v.concerns.map((c) => `${roleName(v.reviewerRole)}: ${c}`));
  out.push("", p.bold(`Concerns (${concerns.length})`));
  for (const c of concerns) out.push(...wrap(c, width - 4).map((l, i) => `${i === 0 ? "  - " : "    "}${l}`));
  out.push("", p.bold(`Conditions (${d.conditions.length})`));
  for (const c of d.conditions) out.push(...wrap(c, width - 4).map((l, i) => `${i === 0 ? "  - " : "    "}${l}`));
  out.push("", p.bold(`Verdicts (${approvals(d)} of ${d.approvalsRequired} approvals)`));
  for (const v of d.verdicts) out.push(verdictLine(v, width, p, now));
  if (d.outcome !== Outcome.OUTCOME_UNSPECIFIED) {
    out.push("", p.bold("Outcome"));
    const outcome: [string, string | string[]][] = [
      ["  Outcome", `${outcomeName(d.outcome)}, recorded ${relativeTime(d.implementedAt, now)}${d.outcomeRecordedBy ? ` by ${d.outcomeRecordedBy}` : ""}`],
    ];
    if (d.outcomeNotes) outcome.push(["  Notes", d.outcomeNotes]);
    if (d.lessonsLearned) outcome.push(["  Lessons", d.lessonsLearned]);
    out.push(...fields(outcome, width, p));
  }
  return out;
}
