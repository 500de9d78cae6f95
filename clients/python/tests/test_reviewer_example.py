"""examples/reviewer.py, the reviewer that reads the diff: its votes on crafted tasks, then the
script run as its docstring says against the external-reviewer server (see reviewer_support.py),
vetoing a change that deletes a test file, and stopping on SIGTERM."""

from __future__ import annotations

import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import pytest

import council_client as cc
from reviewer_support import External, external_server, vote_of, with_diff

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "reviewer.py"

DELETES_A_TEST = (
    "--- a/src/cache.ts\n+++ b/src/cache.ts\n@@ -1 +1 @@\n-const TTL = 60;\n+const TTL = 300;\n"
    "--- a/test/cache.test.ts\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-it('expires', () => {});\n-\n"
)
TOUCHES_MORE = (
    "--- a/src/cache.ts\n+++ b/src/cache.ts\n@@ -1 +1 @@\n-const TTL = 60;\n+const TTL = 300;\n"
    "--- a/src/auth.ts\n+++ b/src/auth.ts\n@@ -1 +1 @@\n-check();\n+// check();\n"
)
CLEAN = "--- a/src/cache.ts\n+++ b/src/cache.ts\n@@ -1 +1 @@\n-const TTL = 60;\n+const TTL = 300;\n"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reviewer_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _task(
    diff: str,
    files: tuple[str, ...] = ("src/cache.ts", "test/cache.test.ts"),
) -> cc.ReviewTask:
    return cc.ReviewTask(
        task_id="t-1",
        decision_id="d-1",
        suggestion=with_diff("s-1", diff, files),
        role="quality",
        deadline=datetime.now(timezone.utc) + timedelta(seconds=3),
        dry_run=False,
    )


def test_its_votes() -> None:
    review: Callable[[cc.ReviewTask], cc.ReviewVote] = _example().review
    vetoed = review(_task(DELETES_A_TEST))
    assert (vetoed.vote, vetoed.veto) == ("reject", "deletes_tests")
    assert list(vetoed.concerns) == ["deletes test/cache.test.ts"]
    unlisted = review(_task(TOUCHES_MORE, files=("src/cache.ts",)))
    assert unlisted.vote == "needs_more_info" and "src/auth.ts" in unlisted.reasoning
    assert review(_task(CLEAN, files=("src/cache.ts",))).vote == "approve"
    assert review(_task("")).vote == "abstain"


@pytest.fixture
def example(ext: External) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    """The example reviewer running against the external server, and its stdout's lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env |= {"COUNCIL_TOKEN": ext.reviewer_token, "COUNCIL_REVIEWER_ROLES": "quality"}
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), ext.addr],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout, process.stderr

    def read() -> None:
        for line in out:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        reader.join(timeout=10)  # the pipe is at its end once the process is gone
        out.close()
        err.close()


@pytest.fixture(scope="module")
def ext() -> External:
    return external_server()


def test_the_example_vetoes_a_diff_that_deletes_a_test_and_stops_on_sigterm(
    ext: External,
    example: tuple[subprocess.Popen[str], queue.Queue[str]],
    new_id: Callable[[str], str],
) -> None:
    process, lines = example
    first = lines.get(timeout=20)
    assert first.startswith("serving quality on "), first
    with cc.connect(ext.addr, token=ext.agent_token, timeout=15) as agent:
        files = ("src/cache.ts", "test/cache.test.ts")
        decision = agent.review(with_diff(new_id("s"), DELETES_A_TEST, files)).decision
    assert decision.decision == cc.DecisionType.DECISION_TYPE_REJECT
    quality = vote_of(decision, "quality")
    assert (quality.veto, quality.cast_by) == ("deletes_tests", ext.principal)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    assert lines.get(timeout=5) == "stopped\n"
