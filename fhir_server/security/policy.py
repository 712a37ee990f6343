"""What the caller may do, decided from their Principal: per resource type and interaction
(SMART scopes), and which resources a patient-scoped token reaches (its patient's compartment).

Refusals: an interaction no scope grants answers 403 (``insufficient_scope``); a resource
outside the compartment of a patient-scoped token reads as 404 (its existence is not
disclosed), and writing one answers 403."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.errors import Forbidden, NotFound
from fhir_server.security.compartment import patients_of
from fhir_server.security.scopes import Reach
from fhir_server.security.tokens import Principal

NAMES = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def insufficient_scope(message: str) -> Forbidden:
    return Forbidden(message, headers={
        "WWW-Authenticate": 'Bearer realm="fhir", error="insufficient_scope"'})


@dataclass(frozen=True)
class AccessPolicy:
    principal: Principal
    base_url: str

    def require(self, resource_type: str, permission: str, *,
                whole: bool = False) -> Reach:
        """How far ``permission`` reaches on ``resource_type`` (403 when not at all, or when
        ``whole`` is asked and only a patient compartment is granted)."""
        reach = self.principal.scopes.reach(resource_type, permission)
        action = NAMES.get(permission, permission)
        if reach is Reach.NONE:
            needed = f"user/{resource_type}.{permission}"
            raise insufficient_scope(
                f"The access token does not allow {action} on {resource_type} (a scope such "
                f"as {needed} or its system/ or patient/ form is needed)")
        if reach is Reach.COMPARTMENT:
            if whole:
                raise insufficient_scope(
                    f"{action} on {resource_type} needs a user/ or system/ scope: a patient/ "
                    "scope reaches one patient's compartment only")
            if self.principal.patient is None:
                raise insufficient_scope(
                    "patient/ scopes need a token with a patient launch context "
                    "(a 'patient' claim)")
        return reach

    def member(self, resource: dict[str, Any]) -> bool:
        """Whether a patient-scoped token's patient owns ``resource``."""
        return self.principal.patient in patients_of(resource, self.base_url)

    def check_visible(self, reach: Reach, resource: dict[str, Any] | None,
                      name: str) -> None:
        """404 for a resource outside the token's compartment."""
        if reach is Reach.COMPARTMENT and resource is not None and not self.member(resource):
            raise NotFound(f"{name} is not known")

    def check_writable(self, reach: Reach, resource: dict[str, Any], name: str) -> None:
        """403 for writing a resource outside the token's compartment."""
        if reach is Reach.COMPARTMENT and not self.member(resource):
            raise insufficient_scope(
                f"{name} is outside the compartment of Patient/{self.principal.patient}, the "
                "only patient this token's patient/ scopes reach")

    def may_read(self, resource: dict[str, Any]) -> bool:
        """Whether an included resource may be shown (read scope, compartment)."""
        reach = self.principal.scopes.reach(str(resource.get("resourceType")), "r")
        if reach is Reach.ALL:
            return True
        return reach is Reach.COMPARTMENT and self.principal.patient is not None \
            and self.member(resource)
