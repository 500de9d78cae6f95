/**
 * The commands of SPEC section 10. Each one is a name, its flags (as node:util parseArgs reads
 * them, with a help line each), its help text with an example, and `run`, which returns the exit
 * code. `-o json` prints the proto JSON mapping of what the server sent (ts-proto's toJSON), one
 * object per line: a decision for `get`, `approve`, `reject` and `outcome`; one decision per line
 * for `list` and `pending`, one lesson per line for `lessons`; the response of `summary` and
 * `reviewers`; one stream message per line for `review`, `await` and `watch`.
 */
import { readFileSync } from "node:fs";
import { DeadlineExceededError } from "../clients/typescript/src/errors.js";
import {
  AwaitDecisionResponse,
  GetSummaryResponse,
  ListReviewersResponse,
  ReviewSuggestionResponse,
  WatchDecisionsResponse,
} from "../clients/typescript/src/gen/council/v1/council_service.js";
import {
  Decision,
  DecisionStatus,
  DecisionType,
  Effort,
  ImpactLevel,
  Lesson,
  Outcome,
  RiskLevel,
} from "../clients/typescript/src/gen/council/v1/review.js";
import { changed, isFinal, statusOf } from "../clients/typescript/src/guard.js";
import type { Context } from "./context.js";
import { EXIT, UsageError } from "./errors.js";
import { checkHealth } from "./health.js";
import {
  approvals,
  decisionTypeName,
  decisionView,
  durationJson,
  durationText,
  failurePolicyName,
  fields,
  headline,
  oneLine,
  outcomeName,
  paintStatus,
  paintType,
  relativeTime,
  roleName,
  standing,
  statusName,
  table,
  verdictLine,
  voteLine,
} from "./render.js";
import { buildSuggestion, diffFromBytes, enumChoices, enumValue, parseSuggestionText, type SuggestionFlags } from "./suggestion.js";

/** A flag as parseArgs takes it, plus what help shows. */
export interface Flag {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in help (`ID`, `DURATION`). */
  value?: string;
  help: string;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  name: string;
  /** One line for `council --help`. */
  summary: string;
  /** `ID`, `[FILE|-]`, … after the command's name. */
  args: string;
  /** How many positional arguments it takes. */
  positionals: [min: number, max: number];
  flags: Record<string, Flag>;
  /** More help, in a few lines. */
  details?: string[];
  examples: string[];
  run(ctx: Context, values: Values, args: string[]): Promise<number>;
}

/** The exit code of `review` and `await`: the decision's status (SPEC section 10). */
export function exitForStatus(d: Decision): number {
  switch (statusOf(d)) {
    case DecisionStatus.DECISION_STATUS_APPROVED:
      return EXIT.ok;
    case DecisionStatus.DECISION_STATUS_PENDING:
      return EXIT.pending;
    case DecisionStatus.DECISION_STATUS_EXPIRED:
      return EXIT.expired;
    default:
      return EXIT.rejected; // rejected, superseded
  }
}

const TYPE_CHOICES = enumChoices(DecisionType, "DECISION_TYPE_");
const STATUS_CHOICES = enumChoices(DecisionStatus, "DECISION_STATUS_");
const OUTCOME_CHOICES = enumChoices(Outcome, "OUTCOME_");

function limitOf(values: Values, fallback: number): number {
  const raw = values.limit as string | undefined;
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--limit: ${JSON.stringify(raw)} is not a whole number (0: no limit)`);
  return Number(raw);
}

const str = (values: Values, name: string) => values[name] as string | undefined;

/** Reads at most `limit` items (0: all) and says whether there were more. */
async function take<T>(items: AsyncIterable<T>, limit: number): Promise<{ items: T[]; more: boolean }> {
  const out: T[] = [];
  for await (const item of items) {
    if (limit > 0 && out.length === limit) return { items: out, more: true };
    out.push(item);
  }
  return { items: out, more: false };
}

/** Prints decisions: one JSON object per line, or a table for people. */
function printDecisions(ctx: Context, decisions: Decision[], more: boolean, empty: string, pendingView: boolean): void {
  if (ctx.json) {
    for (const d of decisions) ctx.object(Decision.toJSON(d));
    return;
  }
  if (decisions.length === 0) {
    ctx.line(empty);
    return;
  }
  const now = ctx.now();
  const p = ctx.paint;
  const title = (d: Decision) => d.suggestion?.title ?? d.suggestionId;
  if (pendingView) {
    ctx.lines(
      table(
        [
          { header: "ID", min: Infinity },
          { header: "TYPE" },
          { header: "APPROVED", align: "right" },
          { header: "EXPIRES", min: 3 },
          { header: "SUBMITTER", max: 16, min: 6 },
          { header: "TITLE", flex: true, min: 8 },
        ],
        // Oldest first, so no age column: the room goes to the title.
        decisions.map((d) => [
          { text: d.id },
          { text: decisionTypeName(d.decision), paint: paintType(d.decision, p) },
          `${approvals(d)}/${d.approvalsRequired}`,
          relativeTime(d.expiresAt, now),
          d.submittedBy,
          title(d),
        ]),
        ctx.width,
        p,
      ),
    );
  } else {
    ctx.lines(
      table(
        [
          { header: "ID", min: Infinity },
          { header: "TYPE" },
          { header: "STATUS" },
          { header: "DECIDED", min: 3 },
          { header: "SUGGESTION", max: 20, min: 6 },
          { header: "TITLE", flex: true, min: 8 },
        ],
        decisions.map((d) => {
          const status = statusOf(d);
          return [
            { text: d.id },
            { text: decisionTypeName(d.decision), paint: paintType(d.decision, p) },
            { text: statusName(status), paint: paintStatus(status, p) },
            relativeTime(d.decidedAt, now),
            d.suggestionId,
            title(d),
          ];
        }),
        ctx.width,
        p,
      ),
    );
  }
  if (more) ctx.note(`(${decisions.length} shown; more with --limit N, or --limit 0 for all)`);
}

/** A decision's state for people in one line: where it stands, or once final who settled it. */
const stateLine = (ctx: Context, d: Decision) => headline(d, ctx.paint, ctx.now(), ctx.width);

/**
 * Follows a decision until it is final (or `--timeout`, or Ctrl-C), printing each state that says
 * something new: as a JSON line (AwaitDecisionResponse), or for people the first state in full,
 * then each new verdict and each change of status. `since` is a state already printed. Returns
 * the last state seen (undefined if none came), and whether --timeout ended the wait.
 */
async function follow(ctx: Context, id: string, since?: Decision): Promise<{ last: Decision | undefined; timedOut: boolean }> {
  const p = ctx.paint;
  let last = since;
  const waiting = () => ctx.line(p.dim(`  waiting for people… (Ctrl-C stops waiting; \`council await ${id}\` resumes)`));
  if (since && !ctx.json) waiting();
  try {
    for await (const state of ctx.council().awaitDecision(id, { timeoutMs: ctx.timeoutMs, signal: ctx.abort.signal })) {
      if (last && !changed(last, state)) continue;
      if (ctx.json) ctx.object(AwaitDecisionResponse.toJSON({ decision: state }));
      else if (!last) {
        ctx.line(stateLine(ctx, state));
        if (!isFinal(state)) waiting();
      } else {
        for (const v of state.verdicts.slice(last.verdicts.length)) ctx.line(verdictLine(v, ctx.width, p, ctx.now()));
        if (statusOf(state) !== statusOf(last) || isFinal(state)) ctx.line(stateLine(ctx, state));
      }
      last = state;
    }
  } catch (err) {
    // Only the wait's own deadline (--timeout) is an answer: the decision is still pending.
    if (err instanceof DeadlineExceededError && ctx.timeoutMs !== undefined && last) return { last, timedOut: true };
    throw err;
  }
  return { last, timedOut: false };
}

/** The exit code after following a decision: its status, or 130 after Ctrl-C while it was pending. */
function afterFollow(ctx: Context, last: Decision | undefined, timedOut: boolean): number {
  if (!last) return EXIT.interrupted; // Ctrl-C before the first state arrived
  if (timedOut) ctx.streams.stderr.write(`${last.id} is still pending after --timeout ${ctx.flags.timeout}\n`);
  else if (ctx.abort.signal.aborted && !isFinal(last)) return EXIT.interrupted;
  return exitForStatus(last);
}

const review: Command = {
  name: "review",
  summary: "submit a suggestion; print each vote as it is cast, then the decision",
  args: "[FILE|-]",
  positionals: [0, 1],
  flags: {
    id: { type: "string", value: "ID", help: "the suggestion's id (default: a new cli-xxxxxxxx)" },
    title: { type: "string", value: "TEXT", help: "what the change is" },
    description: { type: "string", value: "TEXT", help: "the change in more words" },
    reasoning: { type: "string", value: "TEXT", help: "why make it" },
    risk: { type: "string", value: "LEVEL", help: enumChoices(RiskLevel, "RISK_LEVEL_").join("|") },
    impact: { type: "string", value: "LEVEL", help: enumChoices(ImpactLevel, "IMPACT_LEVEL_").join("|") },
    effort: { type: "string", value: "SIZE", help: enumChoices(Effort, "EFFORT_").join("|") },
    "auto-fixable": { type: "boolean", help: "the change can be applied without a person" },
    "fix-step": { type: "string", multiple: true, value: "TEXT", help: "a step of the fix (repeat for more)" },
    file: { type: "string", multiple: true, value: "PATH", help: "a file the change touches (repeat for more)" },
    "diff-file": { type: "string", value: "PATH", help: "the change as a unified diff, e.g. from git diff (-: standard input; at most 1 MiB)" },
    "request-id": { type: "string", value: "ID", help: "idempotency key: the same id and suggestion return the stored decision" },
    supersedes: { type: "string", value: "ID", help: "a pending decision of yours that this review follows up" },
    "dry-run": { type: "boolean", help: "show the votes and decision, store nothing" },
    wait: { type: "boolean", help: "if the decision waits for people, wait for their verdict" },
  },
  details: [
    "The suggestion comes from a YAML or JSON file (`-`: standard input) with the fields of",
    "council.v1.Suggestion (id, title, description, reasoning, risk, impact, auto_fixable,",
    "fix_steps, files_affected, estimated_effort, diff), from flags, or both (flags win).",
    "--diff-file sends the change itself (a unified diff) for the reviewers that read it.",
    "Exit code: 0 approved, 3 rejected (or superseded), 4 pending, 5 expired.",
  ],
  examples: [
    "council review suggestion.yaml --wait",
    "council review --title 'Bump lodash' --risk low --impact low --auto-fixable --file package.json",
    "git diff | council review --title 'Bump lodash' --risk low --impact low --diff-file -",
  ],
  async run(ctx, values, args) {
    if (values.wait && values["dry-run"]) throw new UsageError("--wait and --dry-run do not go together (a dry run stores nothing to wait for)");
    let fromFile = {};
    const path = args[0];
    if (path !== undefined) {
      const body = path === "-" ? readFileSync(0, "utf8") : readFileSync(path, "utf8");
      fromFile = parseSuggestionText(body, path === "-" ? "standard input" : path);
    }
    const suggestion = buildSuggestion(fromFile, values as SuggestionFlags);
    const diffFile = str(values, "diff-file");
    if (diffFile !== undefined) {
      if (diffFile === "-" && path === "-") throw new UsageError("the suggestion and --diff-file cannot both be read from standard input");
      suggestion.diff = diffFromBytes(readFileSync(diffFile === "-" ? 0 : diffFile), diffFile === "-" ? "standard input" : diffFile);
    }
    const p = ctx.paint;
    if (!ctx.json) ctx.line(`${p.bold("Reviewing")} ${suggestion.id}: ${oneLine(suggestion.title)}${values["dry-run"] ? p.dim("  (dry run: nothing is stored)") : ""}`);
    const running = ctx.council().review(suggestion, {
      requestId: str(values, "request-id"),
      dryRun: Boolean(values["dry-run"]),
      supersedes: str(values, "supersedes"),
      signal: ctx.abort.signal,
    });
    for await (const vote of running) {
      if (ctx.json) {
        const event = { $case: "vote" as const, value: vote };
        ctx.object(ReviewSuggestionResponse.toJSON({ event, decisionId: running.decisionId ?? "", suggestionId: suggestion.id }));
      } else ctx.line(voteLine(vote, ctx.width, p));
    }
    const decision = await running.decision;
    if (ctx.json) {
      const event = { $case: "decision" as const, value: decision };
      ctx.object(ReviewSuggestionResponse.toJSON({ event, decisionId: decision.id, suggestionId: decision.suggestionId }));
    } else {
      const about: [string, string][] = [["  Reasoning", decision.finalReasoning]];
      if (decision.conditions.length) about.push(["  Conditions", decision.conditions.join("; ")]);
      ctx.lines([stateLine(ctx, decision), ...fields(about, ctx.width, p)]);
    }
    if (!values.wait || isFinal(decision)) return exitForStatus(decision);
    const { last, timedOut } = await follow(ctx, decision.id, decision);
    return afterFollow(ctx, last ?? decision, timedOut);
  },
};

const get: Command = {
  name: "get",
  summary: "show a decision: its votes, concerns, conditions, verdicts and status",
  args: "ID",
  positionals: [1, 1],
  flags: {},
  examples: ["council get dec-5f0c3a9e1b2d4c6f8a0b1c2d"],
  async run(ctx, _values, [id]) {
    const d = await ctx.council().getDecision(id!);
    if (ctx.json) ctx.object(Decision.toJSON(d));
    else ctx.lines(decisionView(d, ctx.width, ctx.paint, ctx.now()));
    return EXIT.ok;
  },
};

const list: Command = {
  name: "list",
  summary: "list decisions, newest first",
  args: "",
  positionals: [0, 0],
  flags: {
    type: { type: "string", value: "TYPE", help: TYPE_CHOICES.join("|") },
    status: { type: "string", value: "STATUS", help: STATUS_CHOICES.join("|") },
    suggestion: { type: "string", value: "ID", help: "only the decisions on this suggestion" },
    limit: { type: "string", value: "N", help: "at most N decisions (default 50; 0: all)" },
    "oldest-first": { type: "boolean", help: "oldest first" },
  },
  examples: ["council list --status approved --limit 10", "council list --type escalate -o json | jq -r .id"],
  async run(ctx, values) {
    const decisionType = str(values, "type") === undefined ? undefined : enumValue(DecisionType, "DECISION_TYPE_", "--type", values.type);
    const status = str(values, "status") === undefined ? undefined : enumValue(DecisionStatus, "DECISION_STATUS_", "--status", values.status);
    const limit = limitOf(values, 50);
    const { items, more } = await take(
      ctx.council().listDecisions({
        decisionType,
        status,
        suggestionId: str(values, "suggestion"),
        oldestFirst: Boolean(values["oldest-first"]),
        pageSize: limit > 0 ? Math.min(limit + 1, 500) : 500,
      }),
      limit,
    );
    printDecisions(ctx, items, more, "no decisions", false);
    return EXIT.ok;
  },
};

const pending: Command = {
  name: "pending",
  summary: "the approval queue: decisions waiting for people, oldest first",
  args: "",
  positionals: [0, 0],
  flags: {
    type: { type: "string", value: "TYPE", help: "human_approve|defer|escalate" },
    limit: { type: "string", value: "N", help: "at most N decisions (default 50; 0: all)" },
  },
  examples: ["council pending", "council pending -o json | jq -r .id"],
  async run(ctx, values) {
    const decisionType = str(values, "type") === undefined ? undefined : enumValue(DecisionType, "DECISION_TYPE_", "--type", values.type);
    const limit = limitOf(values, 50);
    const { items, more } = await take(
      ctx.council().listDecisions({
        decisionType,
        status: DecisionStatus.DECISION_STATUS_PENDING,
        oldestFirst: true,
        pageSize: limit > 0 ? Math.min(limit + 1, 500) : 500,
      }),
      limit,
    );
    printDecisions(ctx, items, more, "no decisions are waiting for people", true);
    return EXIT.ok;
  },
};

function resolveCommand(verdict: "approve" | "reject"): Command {
  return {
    name: verdict,
    summary: verdict === "approve" ? "approve a pending decision (role approver)" : "reject a pending decision, saying why (role approver)",
    args: "ID",
    positionals: [1, 1],
    flags: {
      comment: { type: "string", value: "TEXT", help: verdict === "approve" ? "why (optional)" : "why (required)" },
      "request-id": { type: "string", value: "ID", help: "idempotency key (default: a new one, reused on retry)" },
    },
    examples:
      verdict === "approve"
        ? ["council approve dec-5f0c3a9e1b2d4c6f8a0b1c2d --comment 'Checked the rollout plan'"]
        : ["council reject dec-5f0c3a9e1b2d4c6f8a0b1c2d --comment 'Not during the freeze'"],
    async run(ctx, values, [id]) {
      const comment = str(values, "comment");
      if (verdict === "reject" && !comment?.trim()) throw new UsageError("reject needs --comment: say why");
      const d = await ctx.council().resolve(id!, verdict, { comment, requestId: str(values, "request-id"), signal: ctx.abort.signal });
      if (ctx.json) ctx.object(Decision.toJSON(d));
      else ctx.lines([stateLine(ctx, d), ...d.verdicts.map((v) => verdictLine(v, ctx.width, ctx.paint, ctx.now()))]);
      return EXIT.ok;
    },
  };
}

const awaitCommand: Command = {
  name: "await",
  summary: "wait until people decide a decision; print each change",
  args: "ID",
  positionals: [1, 1],
  flags: {},
  details: [
    "Waits until the decision is approved, rejected, expired or superseded (or --timeout passes).",
    "Exit code: 0 approved, 3 rejected (or superseded), 4 still pending, 5 expired.",
  ],
  examples: ["council await dec-5f0c3a9e1b2d4c6f8a0b1c2d --timeout 10m && ./deploy.sh"],
  async run(ctx, _values, [id]) {
    const { last, timedOut } = await follow(ctx, id!);
    return afterFollow(ctx, last, timedOut);
  },
};

const outcome: Command = {
  name: "outcome",
  summary: "record what happened when an approved decision was carried out",
  args: `ID ${OUTCOME_CHOICES.join("|")}`,
  positionals: [2, 2],
  flags: {
    notes: { type: "string", value: "TEXT", help: "what happened" },
    lessons: { type: "string", value: "TEXT", help: "what to remember next time" },
    "request-id": { type: "string", value: "ID", help: "idempotency key (default: a new one, reused on retry)" },
  },
  examples: ["council outcome dec-5f0c3a9e1b2d4c6f8a0b1c2d success --notes 'Rolled out' --lessons 'Canary first'"],
  async run(ctx, values, [id, result]) {
    const value = enumValue(Outcome, "OUTCOME_", "outcome", result) as Outcome;
    const d = await ctx.council().recordOutcome(id!, value, {
      notes: str(values, "notes"),
      lessons: str(values, "lessons"),
      requestId: str(values, "request-id"),
    });
    if (ctx.json) ctx.object(Decision.toJSON(d));
    else ctx.line(`${ctx.paint.bold(d.id)}  outcome ${outcomeName(d.outcome)} recorded${d.outcomeRecordedBy ? ` by ${d.outcomeRecordedBy}` : ""}`);
    return EXIT.ok;
  },
};

const lessons: Command = {
  name: "lessons",
  summary: "the lessons recorded with outcomes, newest first",
  args: "",
  positionals: [0, 0],
  flags: { limit: { type: "string", value: "N", help: "at most N lessons (default 50; 0: all)" } },
  examples: ["council lessons --limit 10"],
  async run(ctx, values) {
    const limit = limitOf(values, 50);
    const { items, more } = await take(ctx.council().lessons({ pageSize: limit > 0 ? Math.min(limit + 1, 500) : 500 }), limit);
    if (ctx.json) {
      for (const l of items) ctx.object(Lesson.toJSON(l));
      return EXIT.ok;
    }
    if (items.length === 0) {
      ctx.line("no lessons recorded yet");
      return EXIT.ok;
    }
    const now = ctx.now();
    ctx.lines(
      table(
        [
          { header: "RECORDED", min: 3 },
          { header: "DECISION", min: Infinity },
          { header: "OUTCOME" },
          { header: "BY", max: 16, min: 4 },
          { header: "LESSONS", flex: true, min: 8 },
        ],
        items.map((l) => [relativeTime(l.recordedAt, now), l.decisionId, outcomeName(l.outcome), l.recordedBy, l.lessons || l.notes]),
        ctx.width,
        ctx.paint,
      ),
    );
    if (more) ctx.note(`(${items.length} shown; more with --limit N, or --limit 0 for all)`);
    return EXIT.ok;
  },
};

/** `a 3 · b 1`, from a map of counts, in the order of `keys` first. */
function counts(map: Record<string, number>, keys: string[] = []): string {
  const names = [...keys, ...Object.keys(map).filter((k) => !keys.includes(k)).sort()];
  const parts = names.map((k) => `${k} ${map[k] ?? 0}`);
  return parts.length ? parts.join(" · ") : "-";
}

const summary: Command = {
  name: "summary",
  summary: "counts of decisions by type, status and outcome",
  args: "",
  positionals: [0, 0],
  flags: {},
  examples: ["council summary", "council summary -o json | jq .byStatus.pending"],
  async run(ctx) {
    const s = await ctx.council().summary();
    if (ctx.json) {
      ctx.object(GetSummaryResponse.toJSON(s));
      return EXIT.ok;
    }
    ctx.lines(
      fields(
        [
          ["Decisions", `${s.totalDecisions} (auto-approved ${s.autoApproved})`],
          ["By type", counts(s.byType, ["auto_approve", "human_approve", "defer", "reject", "escalate"])],
          ["By status", counts(s.byStatus, ["pending", "approved", "rejected", "expired", "superseded"])],
          ["Outcomes", counts(s.outcomes, ["success", "failure", "partial", "pending"])],
          ["Lessons", String(s.learningEntries)],
        ],
        ctx.width,
        ctx.paint,
      ),
    );
    return EXIT.ok;
  },
};

const watch: Command = {
  name: "watch",
  summary: "print each vote and decision as it happens, on any replica",
  args: "",
  positionals: [0, 0],
  flags: {
    type: { type: "string", value: "TYPE", help: `only decisions of this type (${TYPE_CHOICES.join("|")})` },
    "no-votes": { type: "boolean", help: "decisions only, without their votes" },
    "no-updates": { type: "boolean", help: "not the changes people make later (verdicts, status, outcome)" },
  },
  details: ["Runs until Ctrl-C (exit 130) or --timeout (exit 0)."],
  examples: ["council watch", "council watch --no-votes -o json | jq -c '{id: .decisionId, status: .decision.status}'"],
  async run(ctx, values) {
    const decisionType = str(values, "type") === undefined ? undefined : enumValue(DecisionType, "DECISION_TYPE_", "--type", values.type);
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    ctx.abort.signal.addEventListener("abort", onAbort, { once: true });
    const timer = ctx.timeoutMs === undefined ? undefined : setTimeout(onAbort, ctx.timeoutMs);
    const p = ctx.paint;
    const seen = new Set<string>();
    if (ctx.streams.stderr.isTTY) ctx.note(p.dim(`watching ${ctx.addr}… (Ctrl-C to stop)`));
    try {
      const events = ctx.council().watch({
        decisionType,
        includeVotes: !values["no-votes"],
        includeUpdates: !values["no-updates"],
        signal: stop.signal,
      });
      for await (const e of events) {
        if (ctx.json) {
          const message =
            e.kind === "vote"
              ? { event: { $case: "vote" as const, value: e.vote }, decisionId: e.decisionId, suggestionId: e.suggestionId }
              : { event: { $case: "decision" as const, value: e.decision }, decisionId: e.decision.id, suggestionId: e.decision.suggestionId };
          ctx.object(WatchDecisionsResponse.toJSON(message));
          continue;
        }
        const time = ctx.now().toTimeString().slice(0, 8);
        if (e.kind === "vote") {
          ctx.line(voteLine(e.vote, ctx.width, p, `${time}  ${e.decisionId}  `));
          continue;
        }
        const d = e.decision;
        // An update is a decision seen before, or one that people (or its expiry) already changed.
        const status = statusOf(d);
        const update =
          seen.has(d.id) ||
          d.verdicts.length > 0 ||
          d.outcome !== Outcome.OUTCOME_UNSPECIFIED ||
          status === DecisionStatus.DECISION_STATUS_EXPIRED ||
          status === DecisionStatus.DECISION_STATUS_SUPERSEDED;
        if (seen.size >= 10_000) seen.clear();
        seen.add(d.id);
        const what = update
          ? d.outcome !== Outcome.OUTCOME_UNSPECIFIED
            ? `outcome ${outcomeName(d.outcome)}`
            : standing(d, ctx.now())
          : d.suggestion?.title ?? d.suggestionId;
        ctx.line(`${time}  ${headline(d, p, ctx.now(), ctx.width - 10, what)}`);
      }
    } finally {
      if (timer) clearTimeout(timer);
      ctx.abort.signal.removeEventListener("abort", onAbort);
    }
    return ctx.abort.signal.aborted ? EXIT.interrupted : EXIT.ok;
  },
};

const reviewers: Command = {
  name: "reviewers",
  summary: "the council's reviewers, external ones with their connected reviewers",
  args: "",
  positionals: [0, 0],
  flags: {},
  details: [
    "Each role: built-in (the rules) or external (reviewer agents vote over ServeReviews), and for",
    "an external role its timeout, its failure policy (the vote cast when no external vote comes)",
    "and how many reviewer agents serve it now, across all replicas.",
  ],
  examples: ["council reviewers", "council reviewers -o json"],
  async run(ctx) {
    const r = await ctx.council().reviewers();
    if (ctx.json) {
      // ts-proto writes a Duration as {seconds, nanos}; the proto JSON mapping (and grpcurl) write "5s".
      const json = ListReviewersResponse.toJSON(r) as { reviewers?: { timeout?: unknown }[] };
      r.reviewers.forEach((x, i) => {
        if (x.timeout && json.reviewers?.[i]) json.reviewers[i].timeout = durationJson(x.timeout);
      });
      ctx.object(json);
      return EXIT.ok;
    }
    const p = ctx.paint;
    ctx.line(`${p.dim("Policy")}  ${r.policyVersion}`);
    ctx.lines(
      table(
        [
          { header: "ROLE" },
          { header: "REVIEWER" },
          { header: "RISK TOLERANCE", align: "right" },
          { header: "EXPERTISE", max: 36, min: 8 },
          { header: "VETO CONDITIONS", flex: true, min: 8 },
        ],
        r.reviewers.map((x) => [
          roleName(x.role),
          x.external ? { text: "external", paint: p.cyan } : "built-in",
          x.riskTolerance.toFixed(2),
          x.expertiseAreas.join(", "),
          x.vetoConditions.join("; ") || "-",
        ]),
        ctx.width,
        p,
      ),
    );
    const external = r.reviewers.filter((x) => x.external);
    if (external.length === 0) return EXIT.ok;
    // The external roles' own settings, and who serves them now (across all replicas).
    ctx.lines(["", p.bold("External reviewers")]);
    ctx.lines(
      table(
        [{ header: "ROLE" }, { header: "CONNECTED", align: "right" }, { header: "TIMEOUT", align: "right" }, { header: "ON FAILURE" }],
        external.map((x) => [
          roleName(x.role),
          { text: String(x.connected), paint: x.connected > 0 ? p.green : p.yellow },
          durationText(x.timeout),
          failurePolicyName(x.onFailure),
        ]),
        ctx.width,
        p,
      ),
    );
    // An external role that nobody serves votes by its failure policy at once on every review: say so.
    for (const x of external.filter((x) => x.connected === 0)) {
      ctx.line(p.yellow(`No reviewer serves ${roleName(x.role)}: every review gets its ${failurePolicyName(x.onFailure)} vote at once.`));
    }
    return EXIT.ok;
  },
};

const health: Command = {
  name: "health",
  summary: "whether the server is serving (grpc.health.v1; needs no token)",
  args: "",
  positionals: [0, 0],
  flags: { service: { type: "string", value: "NAME", help: 'the service to ask about (default "": the whole server)' } },
  details: ["Exit code: 0 when SERVING, 1 otherwise."],
  examples: ["council health --addr council.internal:50051 --tls"],
  async run(ctx, values) {
    const service = str(values, "service") ?? "";
    const status = await checkHealth(ctx.council(), ctx.addr, service, ctx.timeoutMs ?? 10_000);
    if (ctx.json) ctx.object({ status });
    else ctx.line(status === "SERVING" ? ctx.paint.green(status) : ctx.paint.red(status));
    return status === "SERVING" ? EXIT.ok : EXIT.error;
  },
};

export const COMMANDS: Command[] = [
  review,
  get,
  list,
  pending,
  resolveCommand("approve"),
  resolveCommand("reject"),
  awaitCommand,
  outcome,
  lessons,
  summary,
  watch,
  reviewers,
  health,
];
