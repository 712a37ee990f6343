"""Text normalisation for string search: case-, accent- and punctuation-insensitive,
field-delimited haystacks. https://hl7.org/fhir/R4/search.html#string ("insensitive to casing
and included combining characters ... Punctuation and non-significant whitespace ... should
also be ignored").

A string search parameter of a resource is stored as one "haystack" text per resource, its
fields joined by ``|``, once normalised and once exact. In the normalised haystack every word
of a field starts after a ``|`` too (``García-López`` and ``Ana`` give ``|garcia |lopez|ana|``),
so starts-with on any field or on any word of a field is one pattern: ``LIKE '%|lop%'``;
a query of several words is written the same way (``garcia lo`` -> ``'%|garcia |lo%'``).
Exact is ``LIKE '%|García-López|%'`` on the exact haystack; contains is ``LIKE '%rcia |lo%'``.
On PostgreSQL trigram indexes (pg_trgm) serve these patterns.

Normalising: lower case without accents or marks; apostrophes dropped (``O'Brien`` ->
``obrien``: one word); any other punctuation or symbol is a space between words
(``García-López`` -> ``garcia lopez``); runs of spaces are one space.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

SEPARATOR = "|"
WORD = " " + SEPARATOR
"""Between the words of one normalised field."""
APOSTROPHES = "'\u2018\u2019\u02bc\u02bb\u0060\u00b4\u2032\uff07"
"""Dropped, not spaced: they join a name's parts (O'Brien, D\u2019Angelo, N'Diaye)."""
_APOSTROPHE = re.compile(f"[{re.escape(APOSTROPHES)}]")


def fold(text: str) -> str:
    """Lower case without accents or marks (``Muñoz`` -> ``munoz``); separators become spaces.
    Token ``:text`` values are stored so."""
    if text.isascii():
        return text.lower().replace(SEPARATOR, " ")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return stripped.casefold().replace(SEPARATOR, " ")


_ASCII_WORDS = {code: (None if chr(code) in APOSTROPHES else " ")
                for code in range(128) if not chr(code).isalnum()}
"""``str.translate`` table for ASCII text: apostrophes dropped, other non-alphanumerics spaced
(what ``normalise`` does character by character, in one C-level pass: most names are ASCII)."""


def normalise(text: str) -> str:
    """``fold`` without punctuation: ``O'Brien`` -> ``obrien``, ``García-López`` ->
    ``garcia lopez``, ``Smith, Anna`` -> ``smith anna``; "" when nothing searchable is left."""
    folded = fold(text)
    if folded.isascii():
        return " ".join(folded.translate(_ASCII_WORDS).split())
    folded = _APOSTROPHE.sub("", folded)
    spaced = "".join(char if char.isalnum() else " " for char in folded)
    return " ".join(spaced.split())


def needle(text: str) -> str:
    """A query value as its words stand in a normalised haystack ("" when nothing is left)."""
    return normalise(text).replace(" ", WORD)


def exact(text: str) -> str:
    return text.replace(SEPARATOR, " ")


def haystack(fields: Iterable[str | None], *, normalised: bool) -> str | None:
    """``|field|field|`` of the non-empty fields (normalised: each word starting after a
    ``|``), or None when there are none."""
    convert = needle if normalised else exact
    parts = [convert(field) for field in fields if isinstance(field, str) and field.strip()]
    parts = [part for part in parts if part]
    if not parts:
        return None
    return SEPARATOR + SEPARATOR.join(parts) + SEPARATOR


def escape_like(text: str) -> str:
    """``text`` with LIKE wildcards escaped (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
