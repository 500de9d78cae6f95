"""examples/tool_call.py, the guard around an LLM tool call (asyncio): run as its docstring says,
and its handler given the calls a model could make (allowed, vetoed, malformed)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from council_client import aio

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tool_call.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tool_call_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_runs_against_the_server(addr: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), addr],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    result = json.loads(last.split(": ", 1)[1])
    assert result["tool_use_id"] == "toolu_example_1" and result["is_error"] is False
    assert result["content"].startswith("Allowed: auto-approved by the council")
    assert "doing: Change CACHE_TTL_SECONDS to 300" in done.stdout


@pytest.mark.asyncio
async def test_the_handler_answers_a_vetoed_and_a_malformed_call(
    addr: str, new_id: Callable[[str], str]
) -> None:
    example = _example()
    vetoed: dict[str, Any] = {
        "type": "tool_use",
        "id": "toolu_2",
        "name": "council_review",
        "input": {
            "id": new_id("veto"),
            "title": "Temporarily bypasses authentication",
            "risk": "medium",
            "impact": "low",
        },
    }
    malformed = {**vetoed, "id": "toolu_3", "input": {"id": "x", "title": "t", "risk": "huge"}}
    async with aio.connect(addr) as council:
        refused = await example.handle_tool_call(council, vetoed)
        invalid = await example.handle_tool_call(council, malformed)
    assert refused["is_error"] is False
    assert refused["content"].startswith("Not allowed (rejected): rejected by the council")
    assert "Do not make this change" in refused["content"]
    assert invalid["is_error"] is True and "impact" in invalid["content"]
