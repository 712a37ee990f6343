"""Reference literals split into (type, id): the quick path for ``Type/id`` gives what the
general rule gives, for any literal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.search_rows import split_any_reference, split_reference


@pytest.mark.parametrize(("literal", "expected"), [
    ("Patient/p-1", ("Patient", "p-1")),
    ("Patient/p-1/_history/3", ("Patient", "p-1")),
    ("http://example.org/fhir/Patient/p-1", ("Patient", "p-1")),
    ("Patient/", (None, None)),
    ("patient/p-1", (None, None)),
    ("/p-1", (None, None)),
    ("Patient/p-1?x=1", ("Patient", "p-1")),
    ("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", (None, None)),
])
def test_examples(literal: str, expected: tuple[str | None, str | None]) -> None:
    assert split_reference(literal) == expected


@given(st.lists(st.sampled_from(["/", "?", "P", "p", "a", "1", "-", "_history", ":", " "]),
                max_size=12).map("".join))
def test_same_as_the_general_rule(literal: str) -> None:
    assert split_reference(literal) == split_any_reference(literal)
