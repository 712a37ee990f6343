"""``Patient/$merge`` (https://build.fhir.org/patient-operation-merge.html, served on R4) and
its undo ``Patient/$unmerge``. A merge moves every reference to the source patient held by a
live resource here (Patient links, DocumentReference subject and other references, Binary
security contexts) to the target, each as a new version; retires the source (inactive,
``replaced-by`` link, merged-into column); adds the ``replaces`` link and the source's
identifiers (use ``old``) to the target; and records all of it in ``patient_merges`` with the
versions before and after, in ONE database transaction. ``preview`` computes it all and
writes nothing."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fhir_server.errors import Conflict, InvalidRequest, NotFound, UnprocessableEntity
from fhir_server.merging import plan
from fhir_server.merging.references import Path, restore, rewrite
from fhir_server.operations.merge_participants import Participant
from fhir_server.validation.resource import validate_resource
from storage.history import HistoryEntry, read_version
from storage.insurance_summary import refresh as refresh_insurance
from storage.patient_repository import PatientRepository
from storage.resource_rows import BATCH, select_rows, write_versions
from storage.row_set import RowSet
from storage.stored import VersionMoved, now
from storage.tables import patient_merges
from storage.unit_of_work import reading, writing

MERGED, UNDONE = "merged", "undone"


@dataclass(frozen=True)
class MergeInputs:
    source: str | None
    source_identifiers: list[dict[str, Any]]
    target: str | None
    target_identifiers: list[dict[str, Any]]
    result: dict[str, Any] | None
    preview: bool
    raw: dict[str, Any]


def _reference_id(value: Any, name: str) -> str:
    literal = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(literal, str) or not literal.startswith("Patient/") \
            or len(literal.split("/")) != 2 or not literal.split("/")[1]:
        raise InvalidRequest(f"$merge {name} must be a valueReference to Patient/{{id}}")
    return literal.split("/")[1]


def parse_merge(body: Any) -> MergeInputs:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("$merge takes a Parameters resource")
    source = target = None
    source_ids: list[dict[str, Any]] = []
    target_ids: list[dict[str, Any]] = []
    result, preview = None, False
    for parameter in body.get("parameter") or []:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name == "source-patient":
            source = _reference_id(parameter.get("valueReference"), name)
        elif name == "target-patient":
            target = _reference_id(parameter.get("valueReference"), name)
        elif name in ("source-patient-identifier", "target-patient-identifier"):
            identifier = parameter.get("valueIdentifier")
            if not isinstance(identifier, dict) or not identifier.get("value"):
                raise InvalidRequest(f"$merge {name} must be a valueIdentifier with a value")
            (source_ids if name.startswith("source") else target_ids).append(identifier)
        elif name == "result-patient":
            resource = parameter.get("resource")
            if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
                raise InvalidRequest("$merge result-patient must be a Patient resource")
            result = validate_resource(resource, "Patient")
        elif name == "preview":
            preview = parameter.get("valueBoolean")
            if not isinstance(preview, bool):
                raise InvalidRequest("$merge preview must be a valueBoolean")
        else:
            raise InvalidRequest(f"$merge has no parameter '{str(name)[:40]}'")
    for side, reference, identifiers in (("source", source, source_ids),
                                         ("target", target, target_ids)):
        if reference is None and not identifiers:
            raise InvalidRequest(f"$merge needs {side}-patient or {side}-patient-identifier")
    return MergeInputs(source, source_ids, target, target_ids, result, preview, body)


@dataclass
class Change:
    """One resource the merge rewrites: its rows before, the resource after, where."""

    participant: Participant
    before: RowSet
    after: dict[str, Any]
    paths: list[Path] = field(default_factory=list)
    merged_into: str | None = None
    sets_merged_into: bool = False
    """The source: its merged-into column is set (merge) or cleared (undo) to ``merged_into``."""
    added: dict[str, Any] | None = None
    """For the target: the identifiers and link the merge added (taken out again on undo)."""

    @property
    def resource_id(self) -> str:
        return str(self.before.main["id"])

    @property
    def version_before(self) -> int:
        return int(self.before.main["version_id"])


class MergeService:
    def __init__(self, engine: AsyncEngine, patients: PatientRepository,
                 participants: dict[str, Participant], mrn_system: str,
                 hash_value: Callable[[str], str]) -> None:
        self._hash = hash_value
        self._engine = engine
        self._patients = patients
        self._participants = participants
        self._mrn_system = mrn_system

    # ------------------------------------------------------------------ merge

    async def merge(self, inputs: MergeInputs, *, requested_by: str | None = None
                    ) -> dict[str, Any]:
        source_id = await self._resolve("source", inputs.source, inputs.source_identifiers)
        target_id = await self._resolve("target", inputs.target, inputs.target_identifiers)
        if source_id == target_id:
            raise UnprocessableEntity("$merge source and target are the same patient "
                                      f"(Patient/{source_id})")
        changes = await self._prepare(source_id, target_id, inputs.result)
        merge_id = None
        if not inputs.preview:
            merge_id = str(uuid.uuid4())
            try:
                async with writing(self._engine) as connection:
                    if await self._referrers(connection, source_id, target_id) != {
                            (c.participant.resource_type, c.resource_id) for c in changes[2:]}:
                        raise VersionMoved()
                    moment = now()
                    await self._write(connection, changes, moment)
                    await refresh_insurance(connection, [source_id, target_id])
                    await connection.execute(insert(patient_merges).values(
                        id=merge_id, source_id=source_id, target_id=target_id, status=MERGED,
                        merged_at=moment, requested_by=requested_by,
                        detail=orjson.dumps(_detail(changes, self._hash)).decode()))
            except (VersionMoved, IntegrityError):
                raise Conflict(f"Patient/{source_id} or a resource referring to it changed "
                               "while the merge was being written (another merge?); nothing "
                               "was merged") from None
        return _merge_answer(inputs, changes, source_id, target_id, merge_id)

    async def _prepare(self, source_id: str, target_id: str,
                       result: dict[str, Any] | None) -> list[Change]:
        """What the merge would change, read outside the write transaction (which then
        re-checks that nothing moved meanwhile)."""
        async with reading(self._engine) as connection:
            return await self._plan(connection, source_id, target_id, result)

    async def _resolve(self, side: str, reference: str | None,
                       identifiers: list[dict[str, Any]]) -> str:
        found: set[str] = set()
        if reference is not None:
            found.add(reference)
        for identifier in identifiers:
            system = identifier.get("system")
            query = f"identifier={system}|{identifier['value']}" if system else \
                f"identifier={identifier['value']}"
            ids = await self._patients.find(query)
            if not ids:
                raise UnprocessableEntity(f"$merge {side}-patient-identifier "
                                          f"{system or ''}|{identifier['value']} matches no patient")
            if len(ids) > 1:
                raise UnprocessableEntity(f"$merge {side}-patient-identifier "
                                          f"{system or ''}|{identifier['value']} matches several "
                                          "patients")
            found.add(ids[0])
        if len(found) != 1:
            raise UnprocessableEntity(f"$merge {side} inputs name different patients: "
                                      f"{', '.join(sorted(found))}")
        return found.pop()

    async def _plan(self, connection: AsyncConnection, source_id: str, target_id: str,
                    result: dict[str, Any] | None) -> list[Change]:
        patients = self._participants["Patient"]
        rows = {r.main["id"]: r for r in await select_rows(connection, patients.tables,
                                                            [source_id, target_id])}
        for side, patient_id in (("source", source_id), ("target", target_id)):
            found = rows.get(patient_id)
            if found is None or found.main["deleted_at"] is not None:
                raise UnprocessableEntity(f"$merge {side} Patient/{patient_id} does not exist")
            if found.main["merged_into_id"] is not None:
                raise UnprocessableEntity(
                    f"$merge {side} Patient/{patient_id} was already merged into "
                    f"Patient/{found.main['merged_into_id']}")
        source = patients.to_resource(rows[source_id])
        target = patients.to_resource(rows[target_id])
        if result is not None:
            if result.get("id") != target_id:
                raise UnprocessableEntity("$merge result-patient must have the target's id "
                                          f"({target_id})")
            if not plan.links_to(result, source_id, "replaces"):
                raise UnprocessableEntity("$merge result-patient must link to the source with "
                                          f"type 'replaces' (Patient/{source_id})")
            new_target = copy.deepcopy(result)
            added: list[dict[str, Any]] = []
            added_link = plan.link(source_id, "replaces")
        else:
            new_target, added, added_link = plan.merged_target(source, target, self._mrn_system)
        changes = [
            Change(patients, rows[source_id], plan.retired_source(source, target_id),
                   merged_into=target_id, sets_merged_into=True),
            Change(patients, rows[target_id], new_target,
                   added={"identifiers": added, "link": added_link}),
        ]
        referrers = await self._referrers(connection, source_id, target_id)
        for participant in self._participants.values():
            ids = sorted(i for t, i in referrers if t == participant.resource_type)
            for start in range(0, len(ids), BATCH):
                for before in sorted(await select_rows(connection, participant.tables,
                                                       ids[start:start + BATCH]),
                                     key=lambda rows: str(rows.main["id"])):
                    after, paths = rewrite(participant.to_resource(before), source_id,
                                           target_id)
                    if paths:
                        changes.append(Change(participant, before, after, paths))
        return changes

    async def _referrers(self, connection: AsyncConnection, source_id: str,
                         target_id: str) -> set[tuple[str, str]]:
        """(type, id) of every live resource referring to the source (the pair aside)."""
        found: set[tuple[str, str]] = set()
        for participant in self._participants.values():
            found |= {(participant.resource_type, resource_id)
                      for resource_id in await participant.referrers(connection, source_id)
                      if not (participant.resource_type == "Patient"
                              and resource_id in (source_id, target_id))}
        return found

    @staticmethod
    async def _write(connection: AsyncConnection, changes: list[Change],
                     moment: datetime) -> None:
        """Every change as a new version, batched per type (a few statements per 500)."""
        batches: dict[str, tuple[Participant, list[tuple[RowSet, HistoryEntry, int]]]] = {}
        for change in changes:
            participant = change.participant
            version = change.version_before + 1
            rows = participant.to_rows(change.after, version, moment, change.before)
            if change.sets_merged_into:
                rows.main["merged_into_id"] = change.merged_into
            entry = HistoryEntry(participant.resource_type, change.resource_id, version, moment,
                                 "PUT", rows.to_snapshot(derived=participant.search_only))
            batches.setdefault(participant.resource_type, (participant, []))[1].append(
                (rows, entry, change.version_before))
        for participant, versions in batches.values():
            await write_versions(connection, participant.tables, versions)

    # ------------------------------------------------------------------- undo

    async def unmerge(self, merge_id: str | None, source: str | None) -> dict[str, Any]:
        """Undo a merge: the source back as it was, the target without the merge's additions,
        every moved reference back to the source; 409 naming each conflict when a later edit
        makes that unsafe (then nothing changes)."""
        try:
            async with writing(self._engine) as connection:
                record = await self._merge_record(connection, merge_id, source)
                detail = orjson.loads(record["detail"])
                moment = now()
                changes, conflicts = await self._undo_plan(connection, record, detail)
                if conflicts:
                    raise Conflict("$unmerge is not safe: " + "; ".join(conflicts))
                await self._write(connection, changes, moment)
                await refresh_insurance(connection, [record["source_id"], record["target_id"]])
                detail["undone"] = [f"{c.participant.resource_type}/{c.resource_id}/_history/"
                                    f"{c.version_before + 1}" for c in changes]
                await connection.execute(update(patient_merges).where(
                    patient_merges.c.id == record["id"]).values(
                        status=UNDONE, undone_at=moment, detail=orjson.dumps(detail).decode()))
        except VersionMoved:
            raise Conflict("A resource changed while the merge was being undone; try again") \
                from None
        return {"resourceType": "Parameters", "parameter": [
            {"name": "outcome", "resource": {"resourceType": "OperationOutcome", "issue": [{
                "severity": "information", "code": "informational",
                "diagnostics": f"Merge {record['id']} undone: Patient/{record['source_id']} "
                               f"restored; {len(changes) - 2} resources referring to it again"}]}},
            {"name": "result", "resource": changes[0].after}]}

    def _without_added(self, target: dict[str, Any], added: list[dict[str, Any]],
                       added_link: dict[str, Any]) -> dict[str, Any]:
        """The target without the identifiers (``use`` old, matched by system and keyed hash)
        and the link the merge added."""
        wanted = {(entry["system"], entry["value_hash"]) for entry in added}
        copied = [identifier for identifier in target.get("identifier") or []
                  if identifier.get("use") == "old"
                  and (identifier.get("system"), self._hash(str(identifier.get("value"))))
                  in wanted]
        return plan.without_added(target, copied, added_link)

    async def _merge_record(self, connection: AsyncConnection, merge_id: str | None,
                            source: str | None) -> dict[str, Any]:
        statement = select(patient_merges)
        if merge_id is not None:
            statement = statement.where(patient_merges.c.id == merge_id)
        elif source is not None:
            statement = statement.where(patient_merges.c.source_id == source,
                                        patient_merges.c.status == MERGED)
        else:
            raise InvalidRequest("$unmerge needs a merge id or a source-patient")
        found = (await connection.execute(
            statement.order_by(patient_merges.c.merged_at.desc()).limit(1))).mappings().first()
        if found is None:
            raise NotFound("No such merge to undo")
        if found["status"] != MERGED:
            raise Conflict(f"Merge {found['id']} was already undone")
        return dict(found)

    async def _undo_plan(self, connection: AsyncConnection, record: dict[str, Any],
                         detail: dict[str, Any]) -> tuple[list[Change], list[str]]:
        source_id, target_id = record["source_id"], record["target_id"]
        changes: list[Change] = []
        conflicts: list[str] = []
        patients = self._participants["Patient"]
        current = {r.main["id"]: r for r in await select_rows(connection, patients.tables,
                                                               [source_id, target_id])}
        source_rows, target_rows = current[source_id], current[target_id]
        if source_rows.main["version_id"] != detail["source"]["version_after"]:
            conflicts.append(f"Patient/{source_id} changed after the merge (version "
                             f"{source_rows.main['version_id']})")
        entry = await read_version(connection, "Patient", source_id,
                                   detail["source"]["version_before"])
        if entry is None or entry.snapshot is None:
            raise Conflict(f"Patient/{source_id}: the version before the merge is not kept")
        before = patients.to_resource(RowSet.from_snapshot(entry.snapshot))
        changes.append(Change(patients, source_rows, before, merged_into=None,
                              sets_merged_into=True))
        added = detail["target"]["added"]
        changes.append(Change(patients, target_rows, self._without_added(
            patients.to_resource(target_rows), added["identifiers"], added["link"])))
        by_type: dict[str, list[dict[str, Any]]] = {}
        for moved in detail["moved"]:
            by_type.setdefault(moved["type"], []).append(moved)
        for resource_type, entries in by_type.items():
            participant = self._participants[resource_type]
            for start in range(0, len(entries), BATCH):
                chunk = entries[start:start + BATCH]
                found = {rows.main["id"]: rows for rows in await select_rows(
                    connection, participant.tables, [moved["id"] for moved in chunk])}
                for moved in chunk:
                    rows = found.get(moved["id"])
                    name = f"{resource_type}/{moved['id']}"
                    if rows is None or rows.main["deleted_at"] is not None:
                        conflicts.append(f"{name} was deleted after the merge")
                        continue
                    paths = [tuple(path) for path in moved["paths"]]
                    after, unsafe = restore(participant.to_resource(rows), paths, source_id,
                                            target_id)
                    conflicts += [f"{name} at {path} no longer refers to Patient/{target_id}"
                                  for path in unsafe]
                    changes.append(Change(participant, rows, after, paths))
        return changes, conflicts


def _detail(changes: list[Change], hash_value: Callable[[str], str]) -> dict[str, Any]:
    """The merge record: versions and places only, no demographics (the source's image
    before the merge is its history version; the identifiers copied to the target are kept
    as keyed hashes, so no SSN is ever written in clear)."""
    source, target, *moved = changes
    added = target.added or {"identifiers": [], "link": None}
    return {
        "source": {"version_before": source.version_before,
                   "version_after": source.version_before + 1},
        "target": {"version_before": target.version_before,
                   "version_after": target.version_before + 1,
                   "added": {"identifiers": [
                       {"system": identifier.get("system"),
                        "value_hash": hash_value(str(identifier.get("value")))}
                       for identifier in added["identifiers"]],
                       "link": added["link"]}},
        "moved": [{"type": change.participant.resource_type, "id": change.resource_id,
                   "version_before": change.version_before,
                   "version_after": change.version_before + 1,
                   "paths": [list(path) for path in change.paths]} for change in moved],
    }


def _merge_answer(inputs: MergeInputs, changes: list[Change], source_id: str, target_id: str,
                  merge_id: str | None) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for change in changes[2:]:
        counts[change.participant.resource_type] = counts.get(
            change.participant.resource_type, 0) + 1
    moved = ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"
    if merge_id is None:
        text = (f"Preview: merging Patient/{source_id} into Patient/{target_id} would move the "
                f"references of {sum(counts.values())} resources ({moved}); nothing was changed")
    else:
        text = (f"Merged Patient/{source_id} into Patient/{target_id}: moved the references of "
                f"{sum(counts.values())} resources ({moved}). Merge id {merge_id}; undo with "
                "Patient/$unmerge")
    issues: list[dict[str, Any]] = [
        {"severity": "information", "code": "informational", "diagnostics": text}]
    issues += [{"severity": "information", "code": "informational",
                "diagnostics": f"{name}: {count} moved"} for name, count in sorted(counts.items())]
    target = changes[1].after | {"id": target_id}
    parameters: list[dict[str, Any]] = [
        {"name": "input", "resource": inputs.raw},
        {"name": "outcome", "resource": {"resourceType": "OperationOutcome", "issue": issues}},
        {"name": "result", "resource": target},
    ]
    if merge_id is not None:
        parameters.append({"name": "merge", "valueString": merge_id})
    return {"resourceType": "Parameters", "parameter": parameters}
