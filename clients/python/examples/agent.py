"""An agent that guards its change with Council: submits the suggestion, prints each vote as it
streams in, waits for people if the decision needs them, acts only if allowed, then records how
implementing it went.

    python examples/agent.py [HOST:PORT]     # default: $COUNCIL_ADDR, else 127.0.0.1:50051

Against a server with identity and access: COUNCIL_TOKEN (a bearer token), COUNCIL_CA_FILE (PEM of
the CA to trust; turns TLS on), COUNCIL_CERT_FILE and COUNCIL_KEY_FILE (a client certificate, for
mTLS).
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import council_client as cc


def _pem(variable: str) -> bytes | None:
    path = os.environ.get(variable)
    return Path(path).read_bytes() if path else None


def _print_vote(vote: cc.Vote) -> None:
    print(
        f"  {cc.short_name(cc.ReviewerRole, vote.reviewer_role):<12} "
        f"{cc.short_name(cc.VoteType, vote.vote):<15} "
        f"{vote.confidence:.2f}  {vote.reasoning}"
    )


def _print_decision(decision: cc.Decision) -> None:
    # The council's decision, then each change while people decide: show approvers what to approve.
    if decision.status == cc.DecisionStatus.DECISION_STATUS_PENDING and not decision.verdicts:
        print(
            f"decision {decision.id} waits for {decision.approvals_required} approval(s) "
            f"until {decision.expires_at.ToJsonString()}"
        )


def main(argv: list[str]) -> int:
    address = argv[1] if len(argv) > 1 else os.environ.get("COUNCIL_ADDR", "127.0.0.1:50051")
    suggestion = cc.build_suggestion(
        f"agent-example-{uuid.uuid4().hex[:8]}",
        "Raise the read cache TTL from 60 s to 300 s",
        risk="low",
        impact="minimal",
        description="The cache hit rate is 40%; most entries change hourly.",
        reasoning="Cuts database reads by about half.",
        auto_fixable=True,
        fix_steps=["Change CACHE_TTL_SECONDS to 300", "Run the cache tests"],
        files_affected=["src/cache/config.py"],
        estimated_effort="small",
    )

    with cc.connect(
        address,
        root_certificates=_pem("COUNCIL_CA_FILE"),
        certificate_chain=_pem("COUNCIL_CERT_FILE"),
        private_key=_pem("COUNCIL_KEY_FILE"),
        token=os.environ.get("COUNCIL_TOKEN") or None,
        timeout=10,
    ) as council:
        try:
            print(f"reviewing {suggestion.id}")
            verdict = council.guard(
                suggestion, on_vote=_print_vote, on_decision=_print_decision, timeout=120
            )
            print(
                f"decision {verdict.decision_id}: "
                f"{cc.short_name(cc.DecisionType, verdict.decision_type)}, "
                f"{'allowed' if verdict.allowed else 'not allowed'} - {verdict.reason}"
            )
            if not verdict.allowed:
                # Rejected, expired, superseded, or nobody decided in time: do not act. The exit
                # codes are those of `council review --wait`: 3 rejected, 4 pending, 5 expired.
                return {"timed_out": 4, "expired": 5}.get(verdict.outcome, 3)
            for condition in verdict.conditions:
                print(f"  condition: {condition}")
            decision = verdict.decision

            # ... the agent implements the change here, then reports back. The request_id makes
            # the report idempotent: retries (automatic on UNAVAILABLE, or a rerun that passes the
            # same id) record it once.
            outcome_request = f"{decision.id}-outcome-1"
            updated = council.record_outcome(
                decision.id,
                "success",
                notes="Deployed; hit rate 78%.",
                lessons="Hourly data tolerates a 5-minute TTL.",
                request_id=outcome_request,
            )
            print(
                f"recorded outcome: {cc.short_name(cc.Outcome, updated.outcome)}"
                f" (request {outcome_request})"
            )
        except cc.Unauthenticated:
            print(
                "council: no token, or one it does not accept (set COUNCIL_TOKEN)", file=sys.stderr
            )
            return 1
        except cc.PermissionDenied as err:
            print(f"council: this principal may not do that: {err.details}", file=sys.stderr)
            return 1
        except cc.ResourceExhausted as err:
            print(f"council: slow down: {err.details}", file=sys.stderr)
            return 1
        except cc.CouncilError as err:
            print(f"council error {err.code.name}: {err.details}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
