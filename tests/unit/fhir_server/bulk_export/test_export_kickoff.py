"""The $export kick-off parsed without storage: what is refused, and what is asked for."""

from __future__ import annotations

import pytest

from fhir_server.bulk_export.kickoff import EXPORTED_TYPES, SYSTEM, parse_kickoff
from fhir_server.errors import InvalidRequest

ASYNC = "respond-async"


def test_types_come_back_in_file_order_once() -> None:
    wanted = parse_kickoff([("_type", "Binary,Patient"), ("_type", "Patient")], level=SYSTEM,
                           prefer=ASYNC, served=EXPORTED_TYPES)
    assert wanted.types == ("Patient", "Binary")
    assert parse_kickoff([], level=SYSTEM, prefer=ASYNC, served=EXPORTED_TYPES).types is None


@pytest.mark.parametrize("value", ["application/fhir+ndjson", "application/fhir ndjson",
                                   "application/ndjson", "ndjson", "NDJSON"])
def test_ndjson_output_formats_are_accepted(value: str) -> None:
    parse_kickoff([("_outputFormat", value)], level=SYSTEM, prefer=ASYNC, served=EXPORTED_TYPES)


def test_since_keeps_a_time_zone_sent_unencoded() -> None:
    wanted = parse_kickoff([("_since", "2026-11-01T10:00:00 01:00")], level=SYSTEM,
                           prefer=ASYNC, served=EXPORTED_TYPES)
    assert wanted.since == "2026-11-01T10:00:00+01:00"


@pytest.mark.parametrize(("pairs", "prefer", "named"), [
    ([], None, "respond-async"),
    ([], "return=minimal", "respond-async"),
    ([("_type", "")], ASYNC, "_type"),
    ([("_type", "AuditEvent")], ASYNC, "AuditEvent"),
    ([("_since", "2026-11-01"), ("_since", "2026-11-02")], ASYNC, "_since"),
    ([("_outputFormat", "application/fhir+json")], ASYNC, "application/fhir+json"),
    ([("patient", "Patient/1")], ASYNC, "patient"),
])
def test_refusals_name_the_fault(pairs: list[tuple[str, str]], prefer: str | None,
                                 named: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_kickoff(pairs, level=SYSTEM, prefer=prefer, served=EXPORTED_TYPES)
    assert named in refused.value.message


def test_lenient_handling_lists_what_it_ignored() -> None:
    wanted = parse_kickoff([("_elements", "id"), ("_format", "json")], level=SYSTEM,
                           prefer="respond-async; handling=lenient", served=EXPORTED_TYPES)
    assert wanted.ignored == ("_elements",)
