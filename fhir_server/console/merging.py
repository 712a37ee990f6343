"""Merge and undo from the console, through the same merge service as ``Patient/$merge`` and
``$unmerge``: the inputs built as a Parameters and parsed by the operation's own parser, the
preview (``preview=true``) read back into what will move."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fhir_server.console import display
from fhir_server.operations.merge import MergeService, parse_merge

_MOVED = re.compile(r"^([A-Za-z]+): (\d+) moved$")


def _inputs(source_id: str, target_id: str, *, preview: bool) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": f"Patient/{source_id}"}},
        {"name": "target-patient", "valueReference": {"reference": f"Patient/{target_id}"}},
        {"name": "preview", "valueBoolean": preview}]}


@dataclass(frozen=True)
class MergeOutcome:
    summary: str
    moved: list[tuple[str, int]]
    """(resource type, how many of its resources move to the survivor)."""
    result: dict[str, Any]
    """The survivor as it is (or would be) after the merge."""
    merge_id: str | None

    @property
    def moved_total(self) -> int:
        return sum(count for _, count in self.moved)


def _outcome(answer: dict[str, Any]) -> MergeOutcome:
    parameters = {parameter["name"]: parameter for parameter in answer.get("parameter", [])}
    issues = [str(issue.get("diagnostics", "")) for issue in
              parameters["outcome"]["resource"].get("issue", [])]
    moved = [(match.group(1), int(match.group(2))) for text in issues[1:]
             if (match := _MOVED.match(text))]
    return MergeOutcome(issues[0] if issues else "", moved, parameters["result"]["resource"],
                        parameters.get("merge", {}).get("valueString"))


async def preview(merger: MergeService, source_id: str, target_id: str) -> MergeOutcome:
    """What merging ``source_id`` into ``target_id`` would do; nothing is written."""
    return _outcome(await merger.merge(parse_merge(_inputs(source_id, target_id, preview=True))))


async def merge(merger: MergeService, source_id: str, target_id: str, *,
                requested_by: str | None) -> MergeOutcome:
    return _outcome(await merger.merge(parse_merge(_inputs(source_id, target_id, preview=False)),
                                       requested_by=requested_by))


async def unmerge(merger: MergeService, merge_id: str) -> str:
    """Undo the merge; its summary (the source restored, how many references went back)."""
    answer = await merger.unmerge(merge_id, None)
    outcome = next(p for p in answer["parameter"] if p["name"] == "outcome")
    return str(outcome["resource"]["issue"][0]["diagnostics"])


def gained_identifiers(before: dict[str, Any], after: dict[str, Any],
                       mrn_system: str) -> list[display.IdentifierView]:
    """The identifiers the survivor gains (the retired record's, kept with use 'old')."""
    had = {(view.system, view.value) for view in display.identifiers(before, mrn_system)}
    return [view for view in display.identifiers(after, mrn_system)
            if (view.system, view.value) not in had]
