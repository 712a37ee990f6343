"""Reference literals split into (type, id): the quick path for ``Type/id`` gives what the
general rule gives, for any literal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.search_rows import split_reference


def _general_rule(literal: str) -> tuple[str | None, str | None]:
    """The rule as written before the quick path: the query dropped, trailing slashes
    dropped, ``/_history/n`` dropped, then the last two segments if the type is capitalised."""
    parts = literal.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2], parts[-1]
    return None, None


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
    assert split_reference(literal) == _general_rule(literal)
