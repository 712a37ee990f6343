"""The merged target and the retired source, as https://build.fhir.org/patient-operation-merge.html
describes them: without a client-supplied result, the source's identifiers are copied to the
target with use ``old``; the target gets a ``replaces`` link, the source ``replaced-by`` and
``active = false``."""

from __future__ import annotations

import copy
from typing import Any


def _same_identifier(first: dict[str, Any], second: dict[str, Any]) -> bool:
    return first.get("system") == second.get("system") and first.get("value") == second.get("value")


def copied_identifiers(source: dict[str, Any], target: dict[str, Any],
                       mrn_system: str) -> list[dict[str, Any]]:
    """The source's identifiers the target lacks, marked ``old`` (the source's PRM MRN too:
    it stays findable from the target)."""
    existing = target.get("identifier") or []
    copied = []
    for identifier in source.get("identifier") or []:
        if any(_same_identifier(identifier, mine) for mine in existing):
            continue
        entry = {key: value for key, value in identifier.items() if key != "use"}
        copied.append({"use": "old", **entry})
    return copied


def link(other_id: str, kind: str) -> dict[str, Any]:
    return {"other": {"reference": f"Patient/{other_id}"}, "type": kind}


def merged_target(source: dict[str, Any], target: dict[str, Any], mrn_system: str
                  ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(the target after the merge, the identifiers added, the link added)."""
    result = copy.deepcopy(target)
    added = copied_identifiers(source, target, mrn_system)
    if added:
        result["identifier"] = [*(result.get("identifier") or []), *added]
    replaces = link(source["id"], "replaces")
    result["link"] = [*(result.get("link") or []), replaces]
    return result, added, replaces


def retired_source(source: dict[str, Any], target_id: str) -> dict[str, Any]:
    result = copy.deepcopy(source)
    result["active"] = False
    result["link"] = [link(target_id, "replaced-by"),
                      *(item for item in result.get("link") or []
                        if (item.get("other") or {}).get("reference") != f"Patient/{target_id}")]
    return result


def links_to(resource: dict[str, Any], other_id: str, kind: str) -> bool:
    return any((item.get("other") or {}).get("reference") == f"Patient/{other_id}"
               and item.get("type") == kind for item in resource.get("link") or [])


def without_added(target: dict[str, Any], added: list[dict[str, Any]],
                  added_link: dict[str, Any]) -> dict[str, Any]:
    """The target with the merge's own additions taken out again (whatever else changed)."""
    result = copy.deepcopy(target)
    identifiers = [i for i in result.get("identifier") or [] if i not in added]
    links = [item for item in result.get("link") or [] if item != added_link]
    for key, values in (("identifier", identifiers), ("link", links)):
        if values:
            result[key] = values
        else:
            result.pop(key, None)
    return result
