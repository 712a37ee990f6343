"""Which resource a conditional update, patch or delete acts on, given the ids its search
criteria matched: one set of rules for the REST interactions and for Bundle entries.
https://hl7.org/fhir/R4/http.html#cond-update and https://hl7.org/fhir/R4/http.html#3.1.0.7.1"""

from __future__ import annotations

from fhir_server.errors import PreconditionFailed


def update_target(kind: str, query: str, matches: list[str], body_id: str | None,
                  new_id: str) -> str:
    """The id a conditional update writes: the one match (a body id naming another resource
    is refused later, 400, by the body id check); with no match the body's id (update as
    create) or ``new_id``; several matches are refused (412)."""
    if len(matches) > 1:
        raise PreconditionFailed(f"Conditional update '{kind}?{query}' matches {len(matches)} "
                                 "resources; it must match one")
    if matches:
        return matches[0]
    return body_id or new_id


def patch_target(kind: str, query: str, matches: list[str]) -> str:
    """The one resource a conditional patch changes (none or several: 412; a patch cannot
    create)."""
    if len(matches) > 1:
        raise PreconditionFailed(f"Conditional patch '{kind}?{query}' matches {len(matches)} "
                                 "resources; it must match one")
    if not matches:
        raise PreconditionFailed(f"Conditional patch '{kind}?{query}' matches no resource")
    return matches[0]


def delete_targets(kind: str, query: str, matches: list[str]) -> list[str]:
    """What a conditional delete removes: nothing or the one match (the CapabilityStatement
    says ``single``); several matches are refused (412)."""
    if len(matches) > 1:
        raise PreconditionFailed(f"Conditional delete '{kind}?{query}' matches {len(matches)} "
                                 "resources; it must match at most one")
    return matches
