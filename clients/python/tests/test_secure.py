"""TLS, mTLS, bearer tokens and the typed errors of authentication, roles and rate limits.

These run against the servers that the repository's test/clients.test.ts starts (SPEC §8), given
in the environment:

- ``COUNCIL_TEST_TLS_ADDR``: TLS, with an auth file of principals and tokens;
- ``COUNCIL_TEST_MTLS_ADDR``: the same, and a client certificate is required (mTLS);
- ``COUNCIL_TEST_LIMITED_ADDR``: like the TLS one, with a review rate so low that each principal
  gets one review (burst 1), then ``RESOURCE_EXHAUSTED``;
- ``COUNCIL_TEST_CA_FILE``: the CA (PEM) that signed the servers' and the client's certificates;
- ``COUNCIL_TEST_CLIENT_CERT_FILE``, ``COUNCIL_TEST_CLIENT_KEY_FILE``: a client certificate whose
  common name the auth file names (principal ``COUNCIL_TEST_CLIENT_PRINCIPAL``, role agent);
- ``COUNCIL_TEST_AGENT_TOKEN``: a token of principal ``COUNCIL_TEST_AGENT_PRINCIPAL`` (agent);
- ``COUNCIL_TEST_APPROVER_TOKEN``: a token of a principal with the role approver only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

import council_client as cc
from support import low_risk

_NAMES = (
    "COUNCIL_TEST_TLS_ADDR",
    "COUNCIL_TEST_MTLS_ADDR",
    "COUNCIL_TEST_LIMITED_ADDR",
    "COUNCIL_TEST_CA_FILE",
    "COUNCIL_TEST_CLIENT_CERT_FILE",
    "COUNCIL_TEST_CLIENT_KEY_FILE",
    "COUNCIL_TEST_CLIENT_PRINCIPAL",
    "COUNCIL_TEST_AGENT_TOKEN",
    "COUNCIL_TEST_AGENT_PRINCIPAL",
    "COUNCIL_TEST_APPROVER_TOKEN",
)

@dataclass(frozen=True)
class Secure:
    tls_addr: str
    mtls_addr: str
    limited_addr: str
    ca: bytes
    client_cert: bytes
    client_key: bytes
    client_principal: str
    agent_token: str
    agent_principal: str
    approver_token: str


@pytest.fixture(scope="module")
def secure() -> Secure:
    missing = [name for name in _NAMES if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"set {', '.join(missing)}: these tests need the TLS, mTLS and rate-limited servers "
            "that the repository's test/clients.test.ts starts (npx mocha test/clients.test.ts)",
            pytrace=False,
        )
    env = os.environ
    return Secure(
        tls_addr=env["COUNCIL_TEST_TLS_ADDR"],
        mtls_addr=env["COUNCIL_TEST_MTLS_ADDR"],
        limited_addr=env["COUNCIL_TEST_LIMITED_ADDR"],
        ca=Path(env["COUNCIL_TEST_CA_FILE"]).read_bytes(),
        client_cert=Path(env["COUNCIL_TEST_CLIENT_CERT_FILE"]).read_bytes(),
        client_key=Path(env["COUNCIL_TEST_CLIENT_KEY_FILE"]).read_bytes(),
        client_principal=env["COUNCIL_TEST_CLIENT_PRINCIPAL"],
        agent_token=env["COUNCIL_TEST_AGENT_TOKEN"],
        agent_principal=env["COUNCIL_TEST_AGENT_PRINCIPAL"],
        approver_token=env["COUNCIL_TEST_APPROVER_TOKEN"],
    )


@pytest.fixture
def clients() -> Iterator[list[cc.CouncilClient]]:
    """Clients the test opens; closed when it ends."""
    opened: list[cc.CouncilClient] = []
    yield opened
    for c in opened:
        c.close()


def test_tls_with_a_private_ca_and_a_token(
    secure: Secure, clients: list[cc.CouncilClient], new_id: Callable[[str], str]
) -> None:
    council = cc.connect(
        secure.tls_addr, root_certificates=secure.ca, token=secure.agent_token, timeout=10
    )
    clients.append(council)
    review = council.review(low_risk(new_id("s")))
    decision = review.decision
    assert decision.id.startswith("dec-")
    assert decision.submitted_by == secure.agent_principal
    assert council.get_decision(decision.id).id == decision.id


def test_plaintext_or_untrusted_tls_cannot_talk_to_the_tls_server(
    secure: Secure, clients: list[cc.CouncilClient]
) -> None:
    once = cc.RetryPolicy(attempts=1)
    plain = cc.connect(secure.tls_addr, token=secure.agent_token, timeout=10, retry=once)
    system_roots = cc.connect(
        secure.tls_addr, tls=True, token=secure.agent_token, timeout=10, retry=once
    )
    clients.extend([plain, system_roots])
    for council in (plain, system_roots):
        with pytest.raises(cc.Unavailable) as err:
            council.summary()
        assert err.value.code is grpc.StatusCode.UNAVAILABLE


def test_mtls_client_certificate_names_the_principal(
    secure: Secure, clients: list[cc.CouncilClient], new_id: Callable[[str], str]
) -> None:
    council = cc.connect(
        secure.mtls_addr,
        root_certificates=secure.ca,
        certificate_chain=secure.client_cert,
        private_key=secure.client_key,
        timeout=10,
    )
    clients.append(council)
    decision = council.review(low_risk(new_id("s"))).decision
    assert decision.submitted_by == secure.client_principal

    # Without a client certificate the server refuses the handshake.
    no_cert = cc.connect(
        secure.mtls_addr,
        root_certificates=secure.ca,
        token=secure.agent_token,
        timeout=10,
        retry=cc.RetryPolicy(attempts=1),
    )
    clients.append(no_cert)
    with pytest.raises(cc.Unavailable):
        no_cert.summary()


def test_a_certificate_needs_its_key(secure: Secure) -> None:
    with pytest.raises(ValueError, match="private_key"):
        cc.connect(
            secure.mtls_addr, root_certificates=secure.ca, certificate_chain=secure.client_cert
        )


@pytest.mark.parametrize("token", [None, "council_not-a-token-the-server-knows", "wrong"])
def test_missing_or_wrong_token_is_unauthenticated_and_not_retried(
    secure: Secure,
    clients: list[cc.CouncilClient],
    new_id: Callable[[str], str],
    token: str | None,
) -> None:
    if token == "wrong":
        token = secure.agent_token + "x"  # one character off a good token
    retries: list[int] = []
    policy = cc.RetryPolicy(
        attempts=5,
        initial_backoff=0.01,
        max_backoff=0.02,
        on_retry=lambda _method, attempt, _err, _delay: retries.append(attempt),
    )
    council = cc.connect(
        secure.tls_addr, root_certificates=secure.ca, token=token, timeout=10, retry=policy
    )
    clients.append(council)
    with pytest.raises(cc.Unauthenticated) as err:
        council.summary()
    assert isinstance(err.value, cc.CouncilError)
    assert err.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert not err.value.retryable
    review = council.review(low_risk(new_id("s")))
    with pytest.raises(cc.Unauthenticated):
        _ = review.decision
    assert review.attempts == 1
    assert retries == []


def test_principal_without_the_role_is_permission_denied(
    secure: Secure, clients: list[cc.CouncilClient], new_id: Callable[[str], str]
) -> None:
    council = cc.connect(
        secure.tls_addr, root_certificates=secure.ca, token=secure.approver_token, timeout=10
    )
    clients.append(council)
    assert council.summary().total_decisions >= 0  # reads are open to every role
    review = council.review(low_risk(new_id("s")))
    with pytest.raises(cc.PermissionDenied) as err:
        list(review)  # the iteration raises it, and .decision again
    assert err.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert "agent" in err.value.details
    with pytest.raises(cc.PermissionDenied):
        _ = review.decision
    assert review.attempts == 1


def test_rate_limited_review_is_resource_exhausted_after_one_attempt(
    secure: Secure, clients: list[cc.CouncilClient], new_id: Callable[[str], str]
) -> None:
    retries: list[int] = []
    policy = cc.RetryPolicy(
        attempts=5,
        initial_backoff=0.01,
        max_backoff=0.02,
        on_retry=lambda _method, attempt, _err, _delay: retries.append(attempt),
    )
    council = cc.connect(
        secure.limited_addr,
        root_certificates=secure.ca,
        token=secure.agent_token,
        timeout=10,
        retry=policy,
    )
    clients.append(council)
    assert council.review(low_risk(new_id("first"))).decision.id.startswith("dec-")
    second = council.review(low_risk(new_id("second")))
    with pytest.raises(cc.ResourceExhausted) as err:
        _ = second.decision
    assert err.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rate" in err.value.details
    assert not err.value.retryable
    assert second.attempts == 1
    assert retries == []
