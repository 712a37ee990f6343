"""Text normalisation for string search: case- and accent-insensitive, field-delimited haystacks.

A string search parameter of a resource is stored as one "haystack" text per resource, its
fields joined by ``|`` (``|ana|lucia|rivera|``), once normalised and once exact. Starts-with on
any field is then ``LIKE '%|riv%'``; exact is ``LIKE '%|Rivera|%'``; contains is
``LIKE '%ive%'``. On PostgreSQL trigram indexes (pg_trgm) serve these patterns.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

SEPARATOR = "|"


def normalise(text: str) -> str:
    """Lower case without accents or marks (``Muñoz`` -> ``munoz``); separators become spaces."""
    if text.isascii():
        return text.lower().replace(SEPARATOR, " ")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return stripped.casefold().replace(SEPARATOR, " ")


def exact(text: str) -> str:
    return text.replace(SEPARATOR, " ")


def haystack(fields: Iterable[str | None], *, normalised: bool) -> str | None:
    """``|field|field|`` of the non-empty fields, or None when there are none."""
    convert = normalise if normalised else exact
    parts = [convert(field) for field in fields if isinstance(field, str) and field.strip()]
    if not parts:
        return None
    return SEPARATOR + SEPARATOR.join(parts) + SEPARATOR


def escape_like(text: str) -> str:
    """``text`` with LIKE wildcards escaped (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
