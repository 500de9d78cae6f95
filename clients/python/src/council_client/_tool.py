"""The guard as a tool an LLM can call: its definition (a JSON Schema of the suggestion) and the
conversion of the model's tool input into a :class:`~council_client.Suggestion`.

``council_review.json`` in this package is a byte-for-byte copy of the repository's canonical
``clients/tool/council_review.json``, shared by the three clients (a root test checks the copies).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any, Literal

from ._types import Suggestion, build_suggestion

__all__ = ["TOOL_NAME", "ToolInputError", "suggestion_from_tool_input", "tool_definition"]

TOOL_NAME = "council_review"
"""The tool's name, as the model calls it."""


class ToolInputError(ValueError):
    """The model's tool input does not match the tool's schema; ``field`` names the field at
    fault (None when the input as a whole is wrong). Send the message back to the model as the
    tool's result so that it can correct the call."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


def _canonical() -> dict[str, Any]:
    text = resources.files("council_client").joinpath("council_review.json").read_text("utf-8")
    definition: dict[str, Any] = json.loads(text)
    return definition


def tool_definition(flavor: Literal["anthropic", "openai"] = "anthropic") -> dict[str, Any]:
    """The tool definition to give a model, as a fresh dict (change it freely).

    ``"anthropic"`` (the canonical file): ``{"name", "description", "input_schema"}``, the shape
    of Anthropic's Messages API ``tools``. ``"openai"``: ``{"type": "function", "function":
    {"name", "description", "parameters"}}``, the shape of OpenAI's Chat Completions ``tools``.
    """
    definition = _canonical()
    if flavor == "anthropic":
        return definition
    if flavor == "openai":
        return {
            "type": "function",
            "function": {
                "name": definition["name"],
                "description": definition["description"],
                "parameters": definition["input_schema"],
            },
        }
    raise ValueError(f"unknown tool flavor {flavor!r}; expected 'anthropic' or 'openai'")


def suggestion_from_tool_input(tool_input: Mapping[str, object] | str | bytes) -> Suggestion:
    """The :class:`~council_client.Suggestion` a model's call of the tool describes.

    ``tool_input`` is the call's input: a mapping (Anthropic's ``tool_use.input``) or its JSON
    text (OpenAI's ``function.arguments``). It is checked against the tool's schema (required
    fields, types, enums, no unknown fields); a mismatch raises :class:`ToolInputError` naming
    the field.
    """
    if isinstance(tool_input, (str, bytes)):
        try:
            parsed = json.loads(tool_input)
        except ValueError as err:
            raise ToolInputError(None, f"the tool input is not JSON: {err}") from None
        if not isinstance(parsed, dict):
            raise ToolInputError(None, "the tool input must be a JSON object")
        tool_input = parsed
    schema: dict[str, Any] = _canonical()["input_schema"]
    values = _checked(tool_input, schema)

    def text(name: str) -> str:
        value = values.get(name, "")
        return value if isinstance(value, str) else ""

    def texts(name: str) -> list[str]:
        value = values.get(name, [])
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    effort = values.get("estimated_effort")
    return build_suggestion(
        text("id"),
        text("title"),
        risk=text("risk"),  # type: ignore[arg-type]  # checked against the schema's enum
        impact=text("impact"),  # type: ignore[arg-type]
        description=text("description"),
        reasoning=text("reasoning"),
        auto_fixable=values.get("auto_fixable") is True,
        fix_steps=texts("fix_steps"),
        files_affected=texts("files_affected"),
        estimated_effort=effort if isinstance(effort, str) else None,  # type: ignore[arg-type]
        diff=text("diff"),
    )


def _checked(tool_input: Mapping[str, object], schema: dict[str, Any]) -> dict[str, object]:
    """``tool_input`` checked against the subset of JSON Schema the tool's schema uses."""
    properties: dict[str, dict[str, Any]] = schema["properties"]
    for name in schema.get("required", []):
        if tool_input.get(name) is None:
            raise ToolInputError(name, "is required")
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(tool_input) - set(properties))
        if unknown:
            fields = ", ".join(sorted(properties))
            raise ToolInputError(unknown[0], f"is not a field of the tool (fields: {fields})")
    values: dict[str, object] = {}
    for name, value in tool_input.items():
        if value is None:
            continue  # a model may send null for an optional field it leaves out
        _check(name, value, properties[name])
        values[name] = value
    return values


def _check(name: str, value: object, rule: dict[str, Any]) -> None:
    kind = rule.get("type")
    if kind == "string":
        if not isinstance(value, str):
            raise ToolInputError(name, "must be a string")
        if len(value.strip()) < int(rule.get("minLength", 0)):
            raise ToolInputError(name, "must not be empty")
        enum = rule.get("enum")
        if enum is not None and value not in enum:
            raise ToolInputError(name, f"must be one of {enum}, not {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ToolInputError(name, "must be true or false")
    elif kind == "array":
        if not isinstance(value, list):
            raise ToolInputError(name, "must be an array")
        for i, item in enumerate(value):
            _check(f"{name}[{i}]", item, rule.get("items", {}))
