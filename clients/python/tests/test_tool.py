"""The guard as an LLM tool: the packaged definition, its two shapes, and the conversion of a
model's tool input into a Suggestion that the live server accepts."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import council_client as cc

CANONICAL = Path(__file__).resolve().parents[2] / "tool" / "council_review.json"


DIFF = "--- a/src/cache.ts\n+++ b/src/cache.ts\n@@ -1 +1 @@\n-const TTL = 60;\n+const TTL = 300;\n"


def _input(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "task-42",
        "title": "Raise the read cache TTL to 300 s",
        "risk": "low",
        "impact": "minimal",
    }
    base.update(fields)
    return base


def test_the_packaged_definition_is_the_repository_file_byte_for_byte() -> None:
    packaged = resources.files("council_client").joinpath("council_review.json").read_bytes()
    assert packaged == CANONICAL.read_bytes()


def test_tool_definition_in_both_shapes() -> None:
    definition = cc.tool_definition()
    assert definition == json.loads(CANONICAL.read_text("utf-8"))
    assert definition["name"] == cc.TOOL_NAME == "council_review"
    schema = definition["input_schema"]
    assert schema["required"] == ["id", "title", "risk", "impact"]

    openai = cc.tool_definition("openai")
    assert openai == {
        "type": "function",
        "function": {
            "name": "council_review",
            "description": definition["description"],
            "parameters": schema,
        },
    }
    cc.tool_definition()["name"] = "changed"  # a fresh copy each time
    assert cc.tool_definition()["name"] == "council_review"
    with pytest.raises(ValueError):
        cc.tool_definition("gemini")  # type: ignore[arg-type]


def test_the_schema_has_every_suggestion_field_and_the_proto_enums() -> None:
    properties: dict[str, Any] = cc.tool_definition()["input_schema"]["properties"]
    assert set(properties) == set(cc.Suggestion.DESCRIPTOR.fields_by_name)

    def names(enum: Any) -> list[str]:
        return [cc.short_name(enum, v) for v in enum.values() if v != 0]

    assert properties["risk"]["enum"] == names(cc.RiskLevel)
    assert properties["impact"]["enum"] == names(cc.ImpactLevel)
    assert properties["estimated_effort"]["enum"] == names(cc.Effort)


def test_a_full_tool_input_becomes_the_suggestion() -> None:
    suggestion = cc.suggestion_from_tool_input(
        _input(
            description="From 60 s to 300 s.",
            reasoning="The hit rate is low.",
            auto_fixable=True,
            fix_steps=["Change CACHE_TTL_SECONDS", "Run the cache tests"],
            files_affected=["src/cache.ts"],
            estimated_effort="small",
            diff=DIFF,
        )
    )
    assert suggestion == cc.build_suggestion(
        "task-42",
        "Raise the read cache TTL to 300 s",
        risk="low",
        impact="minimal",
        description="From 60 s to 300 s.",
        reasoning="The hit rate is low.",
        auto_fixable=True,
        fix_steps=["Change CACHE_TTL_SECONDS", "Run the cache tests"],
        files_affected=["src/cache.ts"],
        estimated_effort="small",
        diff=DIFF,
    )
    # OpenAI sends the arguments as JSON text; null for an optional field means "not given".
    as_text = cc.suggestion_from_tool_input(json.dumps(_input(estimated_effort=None)))
    assert as_text.estimated_effort == cc.Effort.EFFORT_UNSPECIFIED
    assert as_text.title == "Raise the read cache TTL to 300 s"


@pytest.mark.parametrize(
    ("tool_input", "field"),
    [
        ({"title": "t", "risk": "low", "impact": "low"}, "id"),
        (_input(title="  "), "title"),
        (_input(risk="huge"), "risk"),
        (_input(impact=3), "impact"),
        (_input(auto_fixable="yes"), "auto_fixable"),
        (_input(fix_steps="do it"), "fix_steps"),
        (_input(files_affected=["a", 1]), "files_affected[1]"),
        (_input(estimated_effort="tiny"), "estimated_effort"),
        (_input(patch="+1 -1"), "patch"),
        (_input(diff=["+1 -1"]), "diff"),
        ("[1, 2]", None),
        ("not json", None),
    ],
)
def test_a_wrong_tool_input_names_the_field(tool_input: object, field: str | None) -> None:
    with pytest.raises(cc.ToolInputError) as err:
        cc.suggestion_from_tool_input(tool_input)  # type: ignore[arg-type]
    assert err.value.field == field
    assert isinstance(err.value, ValueError)


def test_a_tool_input_is_guarded_by_the_live_server(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    suggestion = cc.suggestion_from_tool_input(
        _input(id=new_id("tool"), auto_fixable=True, fix_steps=["Change it", "Test it"])
    )
    verdict = client.guard(suggestion, timeout=30)
    assert verdict.allowed and verdict.outcome == "approved"
    assert verdict.decision.suggestion.id == suggestion.id
