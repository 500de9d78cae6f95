"""Fixtures for tests against a live Council server at COUNCIL_TEST_ADDR (host:port).

Every suggestion id carries this run's id, so several runs (and the other clients' tests) can
share one server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

import council_client


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("COUNCIL_TEST_ADDR"):
        raise pytest.UsageError(
            "COUNCIL_TEST_ADDR is not set: these tests need a live Council server, e.g.\n"
            "  (cd /path/to/council && npm run build && node dist/main.js --addr 127.0.0.1:50051 &)\n"
            "  COUNCIL_TEST_ADDR=127.0.0.1:50051 bash clients/python/run-tests.sh"
        )


@pytest.fixture(scope="session")
def addr() -> str:
    return os.environ["COUNCIL_TEST_ADDR"]


@pytest.fixture(scope="session")
def client(addr: str) -> Iterator[council_client.CouncilClient]:
    with council_client.connect(addr, timeout=10.0) as c:
        try:
            c.reviewers(timeout=5.0)
        except council_client.CouncilError as err:
            pytest.fail(f"no Council server answers at COUNCIL_TEST_ADDR={addr}: {err}", pytrace=False)
        yield c


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def new_id(run_id: str, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """new_id("x") -> a suggestion id unique to this run, test and label."""

    def make(label: str) -> str:
        return f"py-{run_id}-{request.node.name}-{label}-{uuid.uuid4().hex[:6]}"

    return make
