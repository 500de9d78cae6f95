"""The error classes: one per status family, under CouncilError (no server needed)."""

from __future__ import annotations

import grpc
import pytest

import council_client as cc
from council_client.errors import error_for

_FAMILIES: list[tuple[grpc.StatusCode, type[cc.CouncilError]]] = [
    (grpc.StatusCode.INVALID_ARGUMENT, cc.InvalidArgument),
    (grpc.StatusCode.NOT_FOUND, cc.NotFound),
    (grpc.StatusCode.ALREADY_EXISTS, cc.AlreadyExists),
    (grpc.StatusCode.FAILED_PRECONDITION, cc.FailedPrecondition),
    (grpc.StatusCode.PERMISSION_DENIED, cc.PermissionDenied),
    (grpc.StatusCode.UNAUTHENTICATED, cc.Unauthenticated),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, cc.ResourceExhausted),
    (grpc.StatusCode.UNAVAILABLE, cc.Unavailable),
    (grpc.StatusCode.DEADLINE_EXCEEDED, cc.DeadlineExceeded),
    (grpc.StatusCode.CANCELLED, cc.Cancelled),
    (grpc.StatusCode.INTERNAL, cc.Internal),
    (grpc.StatusCode.DATA_LOSS, cc.DataLoss),
]


@pytest.mark.parametrize(("code", "family"), _FAMILIES)
def test_each_status_has_its_class_under_council_error(
    code: grpc.StatusCode, family: type[cc.CouncilError]
) -> None:
    err = error_for(code, "why")
    assert type(err) is family
    assert isinstance(err, cc.CouncilError)
    assert err.code is code and err.details == "why"
    assert err.retryable is (code is grpc.StatusCode.UNAVAILABLE)


def test_other_codes_are_plain_council_errors() -> None:
    err = error_for(grpc.StatusCode.UNIMPLEMENTED, "no such method")
    assert type(err) is cc.CouncilError
    assert not err.retryable


def test_invalid_argument_names_the_field() -> None:
    err = error_for(grpc.StatusCode.INVALID_ARGUMENT, "suggestion.fix_steps[2]: too long")
    assert isinstance(err, cc.InvalidArgument)
    assert err.field == "suggestion.fix_steps[2]"
    assert cc.InvalidArgument(grpc.StatusCode.INVALID_ARGUMENT, "no field here").field is None
