/**
 * An example agent: guards its change with Council (submits the suggestion, prints each vote as it
 * streams, waits for people if the decision needs them), acts only if allowed, then records an
 * outcome.
 * Run: COUNCIL_ADDR=127.0.0.1:50051 npx tsx examples/agent.ts
 *
 * Against a server with identity and access: COUNCIL_TOKEN (a bearer token), COUNCIL_CA_FILE (PEM
 * of the CA to trust; turns TLS on), COUNCIL_CERT_FILE and COUNCIL_KEY_FILE (a client certificate,
 * for mTLS).
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  connect,
  CouncilError,
  DecisionStatus,
  DecisionType,
  Effort,
  ImpactLevel,
  Outcome,
  PermissionDeniedError,
  ResourceExhaustedError,
  ReviewerRole,
  RiskLevel,
  UnauthenticatedError,
  VoteType,
  type TlsOptions,
} from "../src/index.js";

const address = process.argv[2] ?? process.env.COUNCIL_ADDR ?? "127.0.0.1:50051";
const file = (name: string) => (process.env[name] ? readFileSync(process.env[name]) : undefined);
const tls: TlsOptions = { rootCerts: file("COUNCIL_CA_FILE"), certChain: file("COUNCIL_CERT_FILE"), privateKey: file("COUNCIL_KEY_FILE") };
const council = connect(address, {
  tls: tls.rootCerts || tls.certChain ? tls : false,
  token: process.env.COUNCIL_TOKEN || undefined,
});

try {
  const verdict = await council.guard(
    {
      id: `sug-cache-timeout-${randomUUID().slice(0, 8)}`,
      title: "Raise the cache timeout to 30s",
      description: "Lengthen the upstream cache timeout.",
      reasoning: "Upstream is slow at peak.",
      risk: RiskLevel.RISK_LEVEL_LOW,
      impact: ImpactLevel.IMPACT_LEVEL_MEDIUM,
      autoFixable: true,
      fixSteps: ["Change the setting", "Deploy to staging", "Watch p99 for a day"],
      filesAffected: ["config/cache.yaml"],
      estimatedEffort: Effort.EFFORT_SMALL,
    },
    {
      onVote: (vote) => console.log(`${ReviewerRole[vote.reviewerRole]}: ${VoteType[vote.vote]} (${vote.confidence}) ${vote.reasoning}`),
      onDecision: (d) => {
        if (d.status === DecisionStatus.DECISION_STATUS_PENDING && d.verdicts.length === 0) {
          console.log(`decision ${d.id}: ${DecisionType[d.decision]}; waiting for ${d.approvalsRequired} approval(s) until ${d.expiresAt?.toISOString()}`);
        }
      },
      timeoutMs: 120_000,
    },
  );
  console.log(`decision ${verdict.decisionId}: ${DecisionType[verdict.decisionType]}, ${verdict.allowed ? "allowed" : "not allowed"} - ${verdict.reason}`);
  if (!verdict.allowed) {
    // Rejected, expired, superseded, or nobody decided in time (verdict.timedOut): do not act.
    // The exit codes are the `council review --wait` ones: 3 rejected, 4 still pending, 5 expired.
    process.exitCode = verdict.outcome === "timed_out" ? 4 : verdict.outcome === "expired" ? 5 : 3;
  } else {
    for (const condition of verdict.conditions) console.log(`  condition: ${condition}`);
    // ... the agent implements the change here, then reports back:
    const updated = await council.recordOutcome(verdict.decisionId, Outcome.OUTCOME_SUCCESS, {
      notes: "Deployed; p99 flat.",
      lessons: "Timeout bumps are safe behind the cache.",
    });
    console.log(`outcome recorded: ${Outcome[updated.outcome]} at ${updated.implementedAt?.toISOString()}`);
  }
} catch (err) {
  if (err instanceof UnauthenticatedError) console.error("council: no token, or one it does not accept (set COUNCIL_TOKEN)");
  else if (err instanceof PermissionDeniedError) console.error(`council: this principal may not do that: ${err.details}`);
  else if (err instanceof ResourceExhaustedError) console.error(`council: slow down: ${err.details}`);
  else if (err instanceof CouncilError) console.error(`council refused: ${err.message}`);
  else throw err;
  process.exitCode = 1;
} finally {
  council.close();
}
