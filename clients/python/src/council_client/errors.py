"""Errors raised by the Council client.

Every failed call raises a :class:`CouncilError` that keeps the gRPC status: ``err.code`` is the
:class:`grpc.StatusCode` and ``err.details`` the server's message (which, for bad input, starts with
the field at fault, as in ``suggestion.title: must not be empty or blank``). Each status the
service uses has its own subclass, so both styles work::

    except InvalidArgument as err: ...
    except Unauthenticated: ...            # no token, or one the server does not accept
    except PermissionDenied as err: ...    # a known caller without the role; details name it
    except CouncilError as err:
        if err.code is grpc.StatusCode.NOT_FOUND: ...

Only :class:`Unavailable` is retried by the client; :class:`ResourceExhausted` (a rate limit) is
raised at once, since retrying straight away would only hit the limit again.
"""

from __future__ import annotations

import re

import grpc

__all__ = [
    "CouncilError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "PermissionDenied",
    "Unauthenticated",
    "ResourceExhausted",
    "Unavailable",
    "DeadlineExceeded",
    "Cancelled",
    "Internal",
    "DataLoss",
    "error_for",
    "from_rpc_error",
]


class CouncilError(Exception):
    """A call to Council failed with ``code`` (a :class:`grpc.StatusCode`) and ``details``."""

    code: grpc.StatusCode
    details: str

    @property
    def retryable(self) -> bool:
        """Whether the same call (with the same ``request_id``) may succeed if sent again: only
        for ``UNAVAILABLE``."""
        return self.code is grpc.StatusCode.UNAVAILABLE

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}" if details else code.name)
        self.code = code
        self.details = details


class InvalidArgument(CouncilError):
    """The request was malformed; ``field`` names the field at fault when the server said which."""

    @property
    def field(self) -> str | None:
        """The field path the details start with (``suggestion.title``), or None."""
        match = re.match(r"([A-Za-z_][\w.\[\]]*): ", self.details)
        return match.group(1) if match else None


class NotFound(CouncilError):
    """The decision (or other resource) does not exist."""


class AlreadyExists(CouncilError):
    """The resource already exists."""


class FailedPrecondition(CouncilError):
    """The request conflicts with stored state: a request_id reused for another suggestion, or
    for another outcome (outcome, notes or lessons) of the same decision."""


class PermissionDenied(CouncilError):
    """The caller is known but lacks the role the call needs; the details name the role."""


class Unauthenticated(CouncilError):
    """The caller's credentials are missing or not accepted (no token, a wrong or revoked one, an
    unknown client certificate). The server gives one message whatever the reason."""


class ResourceExhausted(CouncilError):
    """A limit was hit: the caller's review rate, or a watcher that fell too far behind. Never
    retried by the client; wait before sending again."""


class Unavailable(CouncilError):
    """The server or its store could not be reached; raised once the retries are used up."""


class DeadlineExceeded(CouncilError):
    """The call's deadline (its ``timeout``) passed before it finished."""


class Cancelled(CouncilError):
    """The call was cancelled."""


class Internal(CouncilError):
    """The server failed (it sends no details), or the stream broke the protocol."""


class DataLoss(CouncilError):
    """The server found stored data damaged or missing."""


_BY_CODE: dict[grpc.StatusCode, type[CouncilError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.DATA_LOSS: DataLoss,
}


def error_for(code: grpc.StatusCode, details: str) -> CouncilError:
    """The CouncilError (subclass) for ``code``."""
    return _BY_CODE.get(code, CouncilError)(code, details)


def from_rpc_error(err: grpc.RpcError) -> CouncilError:
    """Converts an error raised by grpc into the matching CouncilError, keeping its status."""
    code = err.code() if callable(getattr(err, "code", None)) else None
    details = err.details() if callable(getattr(err, "details", None)) else None
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    return error_for(code, details or "")
