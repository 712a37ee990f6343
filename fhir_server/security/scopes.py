"""SMART on FHIR scopes: what a token may do, per resource type and interaction.

Grammar (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
``<context>/<type>.<permissions>`` with context ``patient``, ``user`` or ``system``, type a
resource type or ``*``, permissions SMART v2 letters in the order ``c r u d s`` (any non-empty
subset) or v1 ``read`` (= ``rs``), ``write`` (= ``cud``) or ``*`` (= ``cruds``).

This server adds named permissions in the same shape, ``<context>/Patient.$match``,
``<context>/Patient.$merge`` (also ``$unmerge``) and ``<context>/Patient.$reveal-ssn``;
the ``*`` type never grants them, nor access to ``AuditEvent`` (an auditor needs
``user/AuditEvent.rs`` or ``system/AuditEvent.rs`` by name). Scopes with v2 query
parameters (``.rs?category=...``) and unknown scopes (``openid``, ``launch``, ...) grant
nothing here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

INTERACTION_LETTERS = "cruds"
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
NAMED_PERMISSIONS = frozenset({"$match", "$merge", "$reveal-ssn"})
NAMED_ONLY_TYPES = frozenset({"AuditEvent"})
"""Types the ``*`` wildcard does not reach."""
CONTEXTS = ("patient", "user", "system")
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]{0,63})\.(\S+)$")
_LETTERS = re.compile(r"^c?r?u?d?s?$")


class Reach(IntEnum):
    """How far a grant goes: nothing, the token's patient compartment, or everything."""

    NONE = 0
    COMPARTMENT = 1
    ALL = 2


@dataclass(frozen=True)
class Scope:
    context: str
    resource_type: str
    permissions: frozenset[str]
    """Interaction letters (``c r u d s``) and named permissions (``$merge``, ...)."""


def parse_scope(text: str) -> Scope | None:
    """The scope ``text`` names, or None when it grants nothing on this server."""
    match = _SCOPE.match(text)
    if match is None:
        return None
    context, resource_type, permission = match.groups()
    if permission in V1_PERMISSIONS:
        return Scope(context, resource_type, frozenset(V1_PERMISSIONS[permission]))
    if permission in NAMED_PERMISSIONS:
        if resource_type != "Patient":
            return None
        return Scope(context, resource_type, frozenset({permission}))
    if permission and _LETTERS.match(permission):
        return Scope(context, resource_type, frozenset(permission))
    return None


@dataclass(frozen=True)
class ScopeSet:
    """The scopes of one token; ``unrestricted`` when no authorisation is configured."""

    scopes: tuple[Scope, ...] = ()
    unrestricted: bool = False

    @classmethod
    def from_claim(cls, claim: str | list[str] | None) -> ScopeSet:
        """From a token's ``scope`` claim (space-separated) or ``scp`` claim (a list)."""
        if claim is None:
            return cls()
        parts = claim.split() if isinstance(claim, str) else [str(part) for part in claim]
        return cls(tuple(scope for part in parts if (scope := parse_scope(part)) is not None))

    def reach(self, resource_type: str, permission: str) -> Reach:
        """How far ``permission`` (an interaction letter or a named permission) goes on
        ``resource_type``: ALL through a user or system scope, COMPARTMENT through a patient
        scope only, else NONE."""
        if self.unrestricted:
            return Reach.ALL
        best = Reach.NONE
        for scope in self.scopes:
            if permission not in scope.permissions:
                continue
            if scope.resource_type != resource_type and not (
                    scope.resource_type == "*" and resource_type not in NAMED_ONLY_TYPES
                    and permission in INTERACTION_LETTERS):
                continue
            if scope.context == "patient":
                best = max(best, Reach.COMPARTMENT)
            else:
                return Reach.ALL
        return best

    def granted(self) -> list[str]:
        """The scopes this server honours, in the SMART v2 spelling (for messages and logs)."""
        return [f"{scope.context}/{scope.resource_type}."
                + "".join(letter for letter in INTERACTION_LETTERS
                          if letter in scope.permissions)
                + "".join(sorted(scope.permissions & NAMED_PERMISSIONS))
                for scope in self.scopes]


UNRESTRICTED = ScopeSet(unrestricted=True)
