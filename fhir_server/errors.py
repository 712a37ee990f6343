"""Errors as data: each kind maps once to an HTTP status and an OperationOutcome issue code.

Hierarchy::

    FhirError                      (500, exception)
    ├── InvalidRequest             (400, invalid)       malformed or invalid input
    │   └── InvalidResource        (400, invalid)       a resource failing validation, with paths
    ├── Unauthorized               (401, login)         no valid bearer token
    ├── Forbidden                  (403, forbidden)     the token's scopes do not allow it
    ├── NotFound                   (404, not-found)
    ├── Gone                       (410, deleted)
    ├── MethodNotAllowed           (405, not-supported)
    ├── NotAcceptable              (406, not-supported)
    ├── Conflict                   (409, conflict)
    ├── PreconditionFailed         (412, conflict)
    ├── PayloadTooLarge            (413, too-long)
    ├── UnsupportedMediaType       (415, not-supported)
    ├── UnprocessableEntity        (422, processing)    business rule refused
    ├── TooManyRequests            (429, throttled)     over a rate limit; Retry-After says when
    └── TimedOut                   (503, timeout)       the database cancelled a statement
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: what is wrong and, where known, at which element."""

    diagnostics: str
    code: str | None = None
    severity: str = "error"
    expression: tuple[str, ...] = ()

    def to_json(self, default_code: str) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code or default_code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


@dataclass
class FhirError(Exception):
    """Base of every error the server turns into an OperationOutcome."""

    message: str
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    status: ClassVar[int] = 500
    issue_code: ClassVar[str] = "exception"

    def __str__(self) -> str:
        return self.message

    def all_issues(self) -> list[Issue]:
        return self.issues or [Issue(self.message)]


class InvalidRequest(FhirError):
    status = 400
    issue_code = "invalid"


class InvalidResource(InvalidRequest):
    status = 400
    issue_code = "invalid"


class Unauthorized(FhirError):
    status = 401
    issue_code = "login"


class Forbidden(FhirError):
    status = 403
    issue_code = "forbidden"


class RangeNotSatisfiable(FhirError):
    status = 416
    issue_code = "invalid"


class NotFound(FhirError):
    status = 404
    issue_code = "not-found"


class Gone(FhirError):
    status = 410
    issue_code = "deleted"


class MethodNotAllowed(FhirError):
    status = 405
    issue_code = "not-supported"


class NotAcceptable(FhirError):
    status = 406
    issue_code = "not-supported"


class Conflict(FhirError):
    status = 409
    issue_code = "conflict"


class PreconditionFailed(FhirError):
    status = 412
    issue_code = "conflict"


class PayloadTooLarge(FhirError):
    status = 413
    issue_code = "too-long"


class UnsupportedMediaType(FhirError):
    status = 415
    issue_code = "not-supported"


class UnprocessableEntity(FhirError):
    status = 422
    issue_code = "processing"


class TooManyRequests(FhirError):
    status = 429
    issue_code = "throttled"


class TimedOut(FhirError):
    status = 503
    issue_code = "timeout"


class Unavailable(FhirError):
    """A service the server depends on (the blob store) failed; the request may succeed later."""

    status = 503
    issue_code = "transient"


def operation_outcome(error: FhirError) -> dict[str, Any]:
    """The OperationOutcome resource describing ``error``."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [issue.to_json(error.issue_code) for issue in error.all_issues()],
    }


def informational_outcome(message: str) -> dict[str, Any]:
    """An OperationOutcome reporting success (``Prefer: return=OperationOutcome``)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": message}],
    }
