"""An agent that submits a suggestion to Council, prints each vote as it streams in, then records
how implementing it went.

    python examples/agent.py [HOST:PORT]     # default: $COUNCIL_ADDR, else 127.0.0.1:50051
"""

from __future__ import annotations

import os
import sys
import uuid

import council_client as cc


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

    with cc.connect(address, timeout=10) as council:
        try:
            review = council.review(suggestion)
            print(f"reviewing {suggestion.id} (request {review.request_id})")
            for vote in review:
                print(
                    f"  {cc.short_name(cc.ReviewerRole, vote.reviewer_role):<12} "
                    f"{cc.short_name(cc.VoteType, vote.vote):<15} "
                    f"{vote.confidence:.2f}  {vote.reasoning}"
                )
            decision = review.decision
            print(f"decision {decision.id}: {cc.short_name(cc.DecisionType, decision.decision)}")
            print(f"  {decision.final_reasoning}")
            for condition in decision.conditions:
                print(f"  condition: {condition}")

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
        except cc.CouncilError as err:
            print(f"council error {err.code.name}: {err.details}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
