"""SSNs shown only to callers allowed to see them (``user/Patient.$reveal-ssn``): to everyone
else a Patient's SSN identifier reads ``***-**-1234`` with the data-absent-reason ``masked``
on its value. An update that sends a masked SSN back keeps the stored one, so a client that
reads, edits and writes a Patient without that scope never erases it."""

from __future__ import annotations

import re
from typing import Any

from terminology.systems import SSN

DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
_MASKED = re.compile(r"^\*\*\*-\*\*-[0-9]{4}$")


def _masked_identifier(identifier: dict[str, Any]) -> dict[str, Any]:
    value = identifier.get("value")
    if identifier.get("system") != SSN or not isinstance(value, str):
        return identifier
    digits = "".join(character for character in value if character.isdigit())
    masked = {key: item for key, item in identifier.items() if key != "value"}
    masked["value"] = f"***-**-{digits[-4:]}" if len(digits) >= 4 else "***-**-****"
    masked["_value"] = {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "masked"}]}
    return masked


def mask_patient(resource: dict[str, Any]) -> dict[str, Any]:
    """The Patient with its SSN masked (the same object when it has none)."""
    identifiers = resource.get("identifier")
    if not isinstance(identifiers, list) or not any(
            isinstance(item, dict) and item.get("system") == SSN for item in identifiers):
        return resource
    return resource | {"identifier": [_masked_identifier(item) if isinstance(item, dict)
                                      else item for item in identifiers]}


def mask_everywhere(value: Any) -> Any:
    """``value`` (a resource, Bundle, Parameters, ...) with every Patient in it masked."""
    if isinstance(value, list):
        return [mask_everywhere(item) for item in value]
    if not isinstance(value, dict):
        return value
    masked = {key: mask_everywhere(item) for key, item in value.items()}
    return mask_patient(masked) if masked.get("resourceType") == "Patient" else masked


def is_masked(identifier: Any) -> bool:
    return (isinstance(identifier, dict) and identifier.get("system") == SSN
            and isinstance(identifier.get("value"), str) and bool(_MASKED.match(identifier["value"])))


def restore_masked(resource: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """``resource`` (sent for an update) with any masked SSN replaced by the stored SSN it
    stands for; a masked SSN with nothing stored to stand for is dropped."""
    identifiers = resource.get("identifier")
    if not isinstance(identifiers, list) or not any(is_masked(item) for item in identifiers):
        return resource
    kept = [item for item in (stored or {}).get("identifier") or []
            if isinstance(item, dict) and item.get("system") == SSN]
    restored: list[Any] = []
    for item in identifiers:
        if not is_masked(item):
            restored.append(item)
            continue
        match = next((original for original in kept
                      if str(original.get("value", "")).replace("-", "")[-4:]
                      == item["value"][-4:]), None)
        if match is not None:
            restored.append(match)
    return resource | {"identifier": restored}
