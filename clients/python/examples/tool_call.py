"""An agent framework's tool call, guarded by Council, with the asyncio client.

The model is offered Council's tool (``cc.tool_definition()``: the shape of Anthropic's Messages
API ``tools``; ``cc.tool_definition("openai")`` for OpenAI's). When it wants to change something,
it calls the tool with the change; the agent turns the call's input into a suggestion, guards it,
and carries out the action only if the council allows it. The tool's result, sent back to the
model, says what happened and why, so that the model can go on (or stop) with that in mind.

Here the model's tool call is a fixed input, so that the example runs without a model:

    python examples/tool_call.py [HOST:PORT]     # default: $COUNCIL_ADDR, else 127.0.0.1:50051

COUNCIL_TOKEN, COUNCIL_CA_FILE, COUNCIL_CERT_FILE and COUNCIL_KEY_FILE as for examples/agent.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import council_client as cc
from council_client import aio

# What a model answers when it decides to use the tool (an Anthropic ``tool_use`` block; with
# OpenAI the input arrives as JSON text in ``function.arguments``, which the converter takes too).
MODEL_TOOL_CALL: dict[str, Any] = {
    "type": "tool_use",
    "id": "toolu_example_1",
    "name": "council_review",
    "input": {
        "id": "TICKET-1234",
        "title": "Raise the read cache TTL from 60 s to 300 s",
        "description": "The cache hit rate is 40%; most entries change hourly.",
        "reasoning": "Cuts database reads by about half.",
        "risk": "low",
        "impact": "minimal",
        "auto_fixable": True,
        "fix_steps": ["Change CACHE_TTL_SECONDS to 300", "Run the cache tests"],
        "files_affected": ["src/cache/config.py"],
        "estimated_effort": "small",
    },
}


async def apply_change(suggestion: cc.Suggestion, conditions: tuple[str, ...]) -> str:
    """The action the tool guards: here it only says what it would do."""
    for step in suggestion.fix_steps:
        print(f"  doing: {step}")
    steps = len(suggestion.fix_steps)
    return f"applied {suggestion.id} ({steps} steps, {len(conditions)} conditions respected)"


def tool_result(call: dict[str, Any], text: str, *, is_error: bool = False) -> dict[str, Any]:
    """The block sent back to the model (Anthropic's ``tool_result``)."""
    return {"type": "tool_result", "tool_use_id": call["id"], "content": text, "is_error": is_error}


async def handle_tool_call(council: aio.AsyncCouncilClient, call: dict[str, Any]) -> dict[str, Any]:
    """Guard, then act only if allowed; always answer the model."""
    if call["name"] != cc.TOOL_NAME:
        return tool_result(call, f"unknown tool {call['name']!r}", is_error=True)
    try:
        suggestion = cc.suggestion_from_tool_input(call["input"])
    except cc.ToolInputError as err:
        # The model can correct its call: tell it which field was wrong.
        return tool_result(call, f"invalid input, {err}", is_error=True)

    def show_vote(vote: cc.Vote) -> None:
        role = cc.short_name(cc.ReviewerRole, vote.reviewer_role)
        print(f"  {role:<12} {cc.short_name(cc.VoteType, vote.vote):<15} {vote.reasoning}")

    try:
        verdict = await council.guard(suggestion, on_vote=show_vote, timeout=120)
    except cc.CouncilError as err:
        return tool_result(call, f"Council could not review the change: {err}", is_error=True)
    if not verdict.allowed:
        return tool_result(
            call,
            f"Not allowed ({verdict.outcome}): {verdict.reason}\nDo not make this change.",
        )
    done = await apply_change(suggestion, verdict.conditions)
    conditions = "; ".join(verdict.conditions) or "none"
    return tool_result(call, f"Allowed: {verdict.reason}\nDone: {done}\nConditions: {conditions}")


def _pem(variable: str) -> bytes | None:
    path = os.environ.get(variable)
    return Path(path).read_bytes() if path else None


async def main(argv: list[str]) -> int:
    address = argv[1] if len(argv) > 1 else os.environ.get("COUNCIL_ADDR", "127.0.0.1:50051")
    tools = [cc.tool_definition()]  # what the agent passes to the model with its messages
    print(f"tools offered to the model: {[t['name'] for t in tools]}")
    async with aio.connect(
        address,
        root_certificates=_pem("COUNCIL_CA_FILE"),
        certificate_chain=_pem("COUNCIL_CERT_FILE"),
        private_key=_pem("COUNCIL_KEY_FILE"),
        token=os.environ.get("COUNCIL_TOKEN") or None,
    ) as council:
        print(f"the model calls {MODEL_TOOL_CALL['name']}: {MODEL_TOOL_CALL['input']['title']}")
        result = await handle_tool_call(council, MODEL_TOOL_CALL)
    print(f"tool result (outcome for the model): {json.dumps(result)}")
    return 1 if result["is_error"] else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv)))
