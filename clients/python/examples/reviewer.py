"""A reviewer agent that reads the diff: it serves an external role (quality by default) and votes

- REJECT with the veto ``deletes_tests`` when the diff deletes a test file (a change that makes
  its own tests go away should not pass because four other reviewers liked it);
- NEEDS_MORE_INFO when the diff touches files that the suggestion's ``files_affected`` does not
  list (the agent under-states what it changes: people should look);
- ABSTAIN when there is no diff to read, APPROVE otherwise.

    python examples/reviewer.py [HOST:PORT]    # default: $COUNCIL_ADDR, else 127.0.0.1:50051

COUNCIL_TOKEN is the bearer token of a principal with the role reviewer; COUNCIL_REVIEWER_ROLES the
roles to serve (comma-separated, default ``quality``; each must be external in the server's
policy); COUNCIL_CA_FILE, COUNCIL_CERT_FILE and COUNCIL_KEY_FILE as for examples/agent.py. It
prints ``serving ...`` each time the server accepts its stream, reconnects on its own, and stops
on SIGINT or SIGTERM (exit 0); a configuration error (token, role, policy) exits 1.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import cast

import council_client as cc

# `--- a/path` and `+++ b/path` name a file's old and new path; /dev/null on one side means the
# file is created or deleted.
_OLD = re.compile(r"^--- (?:a/)?(\S+)", re.MULTILINE)
_NEW = re.compile(r"^\+\+\+ (?:b/)?(\S+)", re.MULTILINE)
_TEST_FILE = re.compile(r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]*$|[._-](test|spec)\.[^/]+$")


def changed_files(diff: str) -> tuple[set[str], set[str]]:
    """The files a unified diff touches, and those it deletes."""
    olds = _OLD.findall(diff)
    news = _NEW.findall(diff)
    touched = {p for p in [*olds, *news] if p != "/dev/null"}
    deleted = {old for old, new in zip(olds, news) if new == "/dev/null"}
    return touched, deleted


def review(task: cc.ReviewTask) -> cc.ReviewVote:
    """The vote on one task: a pure function of the suggestion, so that it is easy to test."""
    suggestion = task.suggestion
    if not suggestion.diff.strip():
        return cc.ReviewVote("abstain", "No diff to read.", confidence=1.0)
    touched, deleted = changed_files(suggestion.diff)
    deleted_tests = sorted(p for p in deleted if _TEST_FILE.search(p))
    if deleted_tests:
        return cc.ReviewVote(
            "reject",
            f"The diff deletes tests: {', '.join(deleted_tests)}.",
            concerns=[f"deletes {p}" for p in deleted_tests[:16]],
            confidence=0.95,
            veto="deletes_tests",
        )
    unlisted = sorted(touched - set(suggestion.files_affected))
    if unlisted:
        return cc.ReviewVote(
            "needs_more_info",
            f"The diff touches files that files_affected does not list: {', '.join(unlisted)}.",
            concerns=[f"unlisted change to {p}" for p in unlisted[:16]],
            confidence=0.8,
        )
    return cc.ReviewVote(
        "approve", f"The diff touches only the files it names ({len(touched)}).", confidence=0.7
    )


def _pem(variable: str) -> bytes | None:
    path = os.environ.get(variable)
    return Path(path).read_bytes() if path else None


def main(argv: list[str]) -> int:
    address = argv[1] if len(argv) > 1 else os.environ.get("COUNCIL_ADDR", "127.0.0.1:50051")
    roles = [r.strip() for r in os.environ.get("COUNCIL_REVIEWER_ROLES", "quality").split(",")]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        cc.serve_reviews(
            address,
            roles=cast(list[cc.ReviewerRoleName], roles),  # checked by serve_reviews
            handler=review,
            root_certificates=_pem("COUNCIL_CA_FILE"),
            certificate_chain=_pem("COUNCIL_CERT_FILE"),
            private_key=_pem("COUNCIL_KEY_FILE"),
            token=os.environ.get("COUNCIL_TOKEN") or None,
            on_connected=lambda: print(f"serving {', '.join(roles)} on {address}", flush=True),
            stop=stop,
        )
    except (cc.CouncilError, ValueError) as err:
        print(f"reviewer: {err}", file=sys.stderr)
        return 1
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
