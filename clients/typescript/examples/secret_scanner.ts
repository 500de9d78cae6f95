/**
 * A reviewer that reads the diff: it vetoes a change whose added lines carry something that looks
 * like a credential (an AWS access key id, a private key, a GitHub or Slack token, a password,
 * secret, token or API key assigned a long random value), and approves the rest, with a low
 * confidence, since it looks for nothing else. Its concerns name each file:line and the kind of
 * credential, never the credential itself: votes are stored and shown to people.
 *
 * Run (the token is a principal's with the role reviewer; the roles must be external in the
 * server's policy, SPEC section 11):
 *   COUNCIL_ADDR=127.0.0.1:50051 COUNCIL_TOKEN=… COUNCIL_ROLES=safety npx tsx examples/secret_scanner.ts
 * It prints `serving safety at 127.0.0.1:50051` once connected, and stops on Ctrl-C (SIGINT) or
 * SIGTERM. COUNCIL_CA_FILE, COUNCIL_CERT_FILE and COUNCIL_KEY_FILE work as in examples/agent.ts.
 *
 * `scanDiff` and `secretScannerVote` are pure functions, exported for tests and for reuse.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { serveReviews, type ReviewerTask, type ReviewerVote, type RoleName, type TlsOptions } from "../src/index.js";

/** One credential-looking thing on an added line. */
export interface SecretFinding {
  /** The file, as the diff's `+++ b/…` line names it. */
  file: string;
  /** The line number in the new file. */
  line: number;
  /** What it looks like, e.g. "AWS access key id". */
  kind: string;
}

/** Patterns that are credentials by their shape alone, whatever surrounds them. */
const SHAPES: { kind: string; pattern: RegExp }[] = [
  { kind: "AWS access key id", pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { kind: "private key", pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/ },
  { kind: "GitHub token", pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b/ },
  { kind: "Slack token", pattern: /\bxox[baprs]-[A-Za-z0-9-]{10,}/ },
];

/**
 * `password = "…"`, `api_key: '…'`, `"clientSecret": "…"`: a name that says secret, then a quoted
 * value. Whether the value is a real one is decided by `looksSecret`.
 */
const ASSIGNMENT =
  /([A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key)[A-Za-z0-9_.-]*)["']?\s*(?::=|=>|=|:)\s*(["'`])([^"'`\s]+)\2/gi;

/** Values that stand for a secret without being one: templates, environment lookups, examples. */
const PLACEHOLDER =
  /^\$\{[^}]*\}$|^\$\(?[A-Za-z_][A-Za-z0-9_]*\)?$|^\{\{.*\}\}$|^<[^>]*>$|^%\(?[A-Za-z_]*\)?s?$|changeme|change[_-]me|placeholder|example|dummy|redacted|your[_-]|^x+$|^\*+$|^\.+$/i;

/** Shannon entropy of `s`, in bits per character: random keys score high, words and repeats low. */
export function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/**
 * A value long and random enough to be a real secret, and not a placeholder: at least 16
 * characters, letters and digits mixed (keys, hex and base64 are; names like
 * `production_database_credentials` are not), and at least 3.3 bits of entropy per character.
 */
export function looksSecret(value: string): boolean {
  return value.length >= 16 && /\d/.test(value) && /[A-Za-z]/.test(value) && !PLACEHOLDER.test(value) && entropy(value) >= 3.3;
}

/** The credentials-looking things on one line (at most one finding per kind). */
function scanLine(text: string): string[] {
  const kinds = SHAPES.filter((s) => s.pattern.test(text)).map((s) => s.kind);
  for (const m of text.matchAll(ASSIGNMENT)) {
    if (looksSecret(m[3]!)) {
      kinds.push(`${m[1]!.toLowerCase().includes("pass") || m[1]!.toLowerCase().includes("pwd") ? "password" : "secret"} assigned in clear`);
      break;
    }
  }
  return kinds;
}

/**
 * The credentials-looking things on the lines a unified diff adds. Removed and context lines are
 * not looked at: removing a key is what should happen. Hunks are followed by their line counts, so
 * that an added line starting with `++` is not taken for a file header.
 */
export function scanDiff(diff: string): SecretFinding[] {
  const findings: SecretFinding[] = [];
  let file = "";
  let line = 0;
  let oldLeft = 0;
  let newLeft = 0;
  for (const raw of diff.split("\n")) {
    const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (oldLeft > 0 || newLeft > 0) {
      const mark = text[0];
      if (mark === "+") {
        for (const kind of scanLine(text.slice(1))) findings.push({ file, line, kind });
        line++;
        newLeft--;
      } else if (mark === "-") {
        oldLeft--;
      } else if (mark === " " || text === "") {
        line++;
        oldLeft--;
        newLeft--;
      }
      // "\ No newline at end of file" counts for neither side.
      continue;
    }
    const header = /^\+\+\+ (?:b\/)?(.*?)(?:\t.*)?$/.exec(text);
    if (header) {
      file = header[1] === "/dev/null" ? "" : header[1]!;
      continue;
    }
    const hunk = /^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(text);
    if (hunk) {
      oldLeft = hunk[1] === undefined ? 1 : Number(hunk[1]);
      line = Number(hunk[2]);
      newLeft = hunk[3] === undefined ? 1 : Number(hunk[3]);
    }
  }
  return findings;
}

/** The scanner's vote on a task: REJECT with the veto `credential_in_diff` when a credential is added, else APPROVE. */
export function secretScannerVote(task: Pick<ReviewerTask, "suggestion">): ReviewerVote {
  const diff = task.suggestion.diff;
  if (!diff) {
    return { vote: "approve", confidence: 0.1, reasoning: "No diff was sent, so there was nothing to scan for credentials." };
  }
  const findings = scanDiff(diff);
  if (findings.length === 0) {
    return {
      vote: "approve",
      confidence: 0.3,
      reasoning: "No credential found in the lines the diff adds. Only credentials were looked for: this says nothing else about the change.",
    };
  }
  const where = findings.map((f) => `${f.file || "(no file name)"}:${f.line}: ${f.kind}`);
  return {
    vote: "reject",
    veto: "credential_in_diff",
    confidence: 0.95,
    reasoning: `The diff adds ${findings.length === 1 ? "a credential" : `${findings.length} credentials`} (${where.slice(0, 3).join("; ")}${findings.length > 3 ? "; …" : ""}). Remove it, and rotate it: it must be treated as leaked.`,
    concerns: where.slice(0, 16),
    conditions: ["Load the credential from the environment or a secret store instead", "Rotate the credential"],
  };
}

async function main(): Promise<void> {
  const address = process.env.COUNCIL_ADDR ?? "127.0.0.1:50051";
  const roles = (process.env.COUNCIL_ROLES ?? "safety").split(",").map((r) => r.trim()) as RoleName[];
  const file = (name: string) => (process.env[name] ? readFileSync(process.env[name]) : undefined);
  const tls: TlsOptions = { rootCerts: file("COUNCIL_CA_FILE"), certChain: file("COUNCIL_CERT_FILE"), privateKey: file("COUNCIL_KEY_FILE") };
  const controller = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => controller.abort());
  const reviewer = serveReviews({
    address,
    tls: tls.rootCerts || tls.certChain ? tls : false,
    token: process.env.COUNCIL_TOKEN || undefined,
    roles,
    signal: controller.signal,
    handler: (task) => {
      const vote = secretScannerVote(task);
      console.log(`${task.decisionId}: ${vote.vote}${vote.veto ? ` (veto ${vote.veto})` : ""}`);
      return vote;
    },
    onConnected: () => console.log(`serving ${roles.join(", ")} at ${address}`),
  });
  try {
    await reviewer.done;
  } catch (err) {
    console.error(`secret scanner: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

// Run as a program, not when a test imports the functions above.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
