"""A request's repositories are wrapped for its caller when first asked for, once each, and
the mapping still lists and refuses exactly what is served."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_server.security.access import GuardedRepositories
from fhir_server.security.auditor import Auditor
from fhir_server.security.guarded import GuardedRepository
from fhir_server.security.policy import AccessPolicy
from fhir_server.security.tokens import ANONYMOUS


class Served:
    """A served repository as far as the wrapper looks at it."""

    def __init__(self, resource_type: str) -> None:
        self.resource_type = resource_type

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def test_each_repository_is_wrapped_once_on_first_use() -> None:
    served: dict[str, Any] = {name: Served(name) for name in ("Patient", "Binary")}
    policy = AccessPolicy(ANONYMOUS, "http://testserver/fhir")
    auditor = Auditor(None, None, ANONYMOUS,  # type: ignore[arg-type]
                      address=None, query="", clock=lambda: datetime.now(UTC))
    guarded = GuardedRepositories(served, policy, auditor)
    assert list(guarded) == ["Patient", "Binary"] and len(guarded) == 2
    patient = guarded["Patient"]
    assert isinstance(patient, GuardedRepository)
    assert guarded["Patient"] is patient
    assert guarded.get("Observation") is None
    with pytest.raises(KeyError):
        guarded["Observation"]
    assert dict(guarded.items())["Binary"] is guarded["Binary"]
