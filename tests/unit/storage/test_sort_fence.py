"""Which searches sort their matches instead of reading a sort index in order, and how the
ORDER BY says so on PostgreSQL (the same order, which no index gives)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from fhir_server.search.query import parse_search
from mappings.patient_search import PATIENT_SEARCH, SORTS_FOLLOWING_MATCHES
from storage.keyset import SortKey, order_by
from storage.sort_fence import sort_follows_matches
from storage.tables import patients


def _fenced(query: str) -> bool:
    pairs = [tuple(part.split("=", 1)) for part in query.split("&")]
    request = parse_search(pairs, {"Patient": PATIENT_SEARCH},  # type: ignore[arg-type]
                           resource_type="Patient", strict=True, default_count=20,
                           max_count=1000, base_url="http://testserver/fhir")
    return sort_follows_matches(request.clauses, (column for column, _ in request.controls.sort),
                                SORTS_FOLLOWING_MATCHES)


@pytest.mark.parametrize(("query", "fenced"), [
    ("name=smi&_sort=family", True),
    ("name=smi&_sort=-given", True),
    ("name=smith,jones&_sort=name", True),
    ("family=smi&_sort=family,given", True),
    ("family:contains=mit&_sort=family", True),
    ("given=john&_sort=given", True),
    ("name=o'b&_sort=family", False),  # two letters: too many matches to sort
    ("name=smi,jo&_sort=family", False),
    ("name=a&_sort=family", False),
    ("given=john&_sort=family", False),  # given names do not bunch along family names
    ("family=smi&_sort=given", False),
    ("name:exact=Smith&_sort=family", False),
    ("name=smi", False),
    ("name=smi&_sort=birthdate", False),
    ("address-city=Boston&_sort=family", False),
    ("name:missing=false&_sort=family", False),
])
def test_name_searches_sort_their_matches_under_a_name_sort(query: str, fenced: bool) -> None:
    assert _fenced(query) is fenced


def _order_sql(fenced: bool) -> str:
    keys = [SortKey(patients.c.family_sort, False), SortKey(patients.c.birth_date, True),
            SortKey(patients.c.id, False)]
    statement = select(patients.c.id).order_by(*order_by(keys, True, fenced=fenced))
    return str(statement.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]


def test_fenced_order_sorts_text_keys_as_themselves_joined_to_nothing() -> None:
    fenced, plain = _order_sql(True), _order_sql(False)
    assert "ORDER BY (patients.family_sort || '') ASC NULLS LAST, patients.birth_date DESC" \
        in fenced
    assert "(patients.id || '') ASC" in fenced
    assert "ORDER BY patients.family_sort ASC NULLS LAST, patients.birth_date DESC" in plain
    assert "||" not in plain
