"""Property tests of mappings.patient: any valid Patient survives rows -> resource, directly and
through the history snapshot, and no SSN is ever in the rows in clear.

``valid_patients()`` is also used by the HTTP property tests (tests/integration)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet
from hypothesis import given, settings

from mappings.patient import (
    RESOURCE_CHILD_COLUMNS,
    RESOURCE_COLUMNS,
    MappingContext,
    resource_to_rows,
    rows_to_resource,
)
from storage.crypto import FieldCipher
from storage.row_set import RowSet, ValueRows
from tests.factories import without_server_elements
from tests.strategies import JSON_COLUMNS, SSN_SYSTEM, valid_patients

CONTEXT = MappingContext(
    cipher=FieldCipher.from_keys([Fernet.generate_key()], b"property-test-hash-key"),
    phone_region="US",
    mrn_system="urn:prm:mrn",
)

def _rows(resource: dict[str, Any]) -> RowSet:
    return resource_to_rows(
        resource, resource_id="p1", version_id=3,
        last_updated=datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        mrn="MRN-2024000001", context=CONTEXT,
    )


@settings(max_examples=100, deadline=None)
@given(valid_patients())
def test_rows_read_back_as_the_patient(resource: dict[str, Any]) -> None:
    read = rows_to_resource(_rows(resource), CONTEXT)
    assert without_server_elements(read) == resource


@settings(max_examples=100, deadline=None)
@given(valid_patients())
def test_snapshot_reads_back_as_the_patient(resource: dict[str, Any]) -> None:
    rows = RowSet.from_snapshot(_rows(resource).to_snapshot())
    assert without_server_elements(rows_to_resource(rows, CONTEXT)) == resource


@settings(max_examples=100, deadline=None)
@given(valid_patients())
def test_read_sets_server_meta(resource: dict[str, Any]) -> None:
    read = rows_to_resource(_rows(resource), CONTEXT)
    assert (read["id"], read["meta"]["versionId"], read["meta"]["lastUpdated"]) == (
        "p1", "3", "2024-01-02T03:04:05.678Z")


@settings(max_examples=100, deadline=None)
@given(valid_patients())
def test_snapshot_holds_no_ssn_in_clear(resource: dict[str, Any]) -> None:
    snapshot = _rows(resource).to_snapshot()
    for identifier in resource.get("identifier", []):
        if identifier["system"] == SSN_SYSTEM:
            assert identifier["value"] not in snapshot
            assert identifier["value"].replace("-", "") not in snapshot


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A row minus SSN ciphertexts (Fernet tokens differ on every encryption), JSON parsed."""
    return {key: json.loads(value) if key in JSON_COLUMNS and value else value
            for key, value in row.items() if key not in ("ssn_ciphertext", "value_ciphertext")}


def _without_ciphertexts(rows: RowSet) -> dict[str, Any]:
    return {"main": _comparable(rows.main),
            "children": {table: [_comparable(row) for row in child_rows]
                         for table, child_rows in rows.children.items()}}


@settings(max_examples=100, deadline=None)
@given(valid_patients())
def test_rewriting_the_read_gives_the_same_rows(resource: dict[str, Any]) -> None:
    rows = _rows(resource)
    again = _rows(rows_to_resource(rows, CONTEXT))
    assert _without_ciphertexts(again) == _without_ciphertexts(rows)


def _value_rows(rows: RowSet) -> ValueRows:
    """``rows`` as a PostgreSQL search page hands them over: only the resource columns, child
    rows as value lists in ``RESOURCE_CHILD_COLUMNS`` order."""
    return ValueRows({column: rows.main.get(column) for column in RESOURCE_COLUMNS},
                     {key: [[row.get(column) for column in columns]
                            for row in rows.children.get(key, [])]
                      for key, columns in RESOURCE_CHILD_COLUMNS.items()},
                     RESOURCE_CHILD_COLUMNS)


@settings(max_examples=150, deadline=None)
@given(valid_patients())
def test_value_rows_read_as_the_same_patient_with_the_same_key_order(
        resource: dict[str, Any]) -> None:
    rows = _rows(resource)
    from_values = rows_to_resource(_value_rows(rows), CONTEXT)
    assert json.dumps(from_values) == json.dumps(rows_to_resource(rows, CONTEXT))
    assert without_server_elements(from_values) == resource


@settings(max_examples=50, deadline=None)
@given(valid_patients())
def test_value_rows_give_the_usual_child_rows_to_whoever_asks(resource: dict[str, Any]) -> None:
    rows = _rows(resource)
    assert _value_rows(rows).children == {
        key: [{column: row.get(column) for column in columns}
              for row in rows.children.get(key, [])]
        for key, columns in RESOURCE_CHILD_COLUMNS.items()}
