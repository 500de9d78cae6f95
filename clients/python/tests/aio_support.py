"""Helpers for the asyncio tests and for the tests against the held server.

The held server (``COUNCIL_TEST_HELD_ADDR``, started by the repository's test/clients.test.ts)
pauses each review for ``COUNCIL_TEST_HELD_MS`` before its second vote, so that a test can cancel a
review mid-stream, and serves its Prometheus metrics at ``COUNCIL_TEST_HELD_METRICS_URL``, so that
the test can see what the server saw (``council_grpc_calls_total{code="CANCELLED"}``).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest

_T = TypeVar("_T")

_HELD_NAMES = ("COUNCIL_TEST_HELD_ADDR", "COUNCIL_TEST_HELD_METRICS_URL", "COUNCIL_TEST_HELD_MS")


@dataclass(frozen=True)
class Held:
    addr: str
    metrics_url: str
    pause: float
    """Seconds each review pauses before its second vote."""

    def metric(self, name: str, **labels: str) -> float:
        """The current value of a metric of the held server (0 if it has no such series yet)."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        return metric_value(text, name, labels)

    def calls(self, method: str, code: str) -> float:
        return self.metric("council_grpc_calls_total", method=method, code=code)


def held_server() -> Held:
    missing = [name for name in _HELD_NAMES if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"set {', '.join(missing)}: these tests need the held server that the repository's "
            "test/clients.test.ts starts (npx mocha test/clients.test.ts)",
            pytrace=False,
        )
    env = os.environ
    return Held(
        addr=env["COUNCIL_TEST_HELD_ADDR"],
        metrics_url=env["COUNCIL_TEST_HELD_METRICS_URL"],
        pause=int(env["COUNCIL_TEST_HELD_MS"]) / 1000,
    )


_LINE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_value(text: str, name: str, labels: dict[str, str]) -> float:
    """The value of the series ``name{labels}`` in a Prometheus text page (0 if absent)."""
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match or match.group(1) != name:
            continue
        if dict(_LABEL.findall(match.group(2) or "")) == labels:
            return float(match.group(3))
    return 0.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Polls ``condition`` until it holds, failing the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.1)


async def eventually(
    probe: Callable[[], Awaitable[_T]],
    done: Callable[[_T], bool],
    what: str,
    timeout: float = 20.0,
) -> _T:
    """Awaits ``probe()`` until ``done`` holds for its value (bounded), and returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s (last: {value!r})")
        await asyncio.sleep(0.1)
