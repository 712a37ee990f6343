"""Normal forms of what two records of one person may write differently: names (case, accents,
punctuation, nicknames), street addresses (abbreviations), birth-date slips."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import cache, lru_cache
from importlib import resources

import jellyfish

_NOT_LETTER = re.compile(r"[^a-z ]+")
_SPACES = re.compile(r"\s+")
STREET_WORDS = {
    "street": "st", "str": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr",
    "lane": "ln", "boulevard": "blvd", "court": "ct", "place": "pl", "square": "sq",
    "terrace": "ter", "highway": "hwy", "parkway": "pkwy", "circle": "cir", "north": "n",
    "south": "s", "east": "e", "west": "w", "apartment": "apt", "suite": "ste", "unit": "apt",
    "calle": "c", "avenida": "ave",
}


@lru_cache(maxsize=65536)
def name(text: str | None) -> str:
    """Lower case ASCII letters and single spaces (``O'Connell`` -> ``oconnell``,
    ``Müller-Lüdenscheidt`` -> ``muller ludenscheidt``)."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    ascii_text = ascii_text.replace("'", "").replace("-", " ")
    return _SPACES.sub(" ", _NOT_LETTER.sub(" ", ascii_text)).strip()


@cache
def _nickname_groups() -> dict[str, frozenset[str]]:
    groups: dict[str, set[str]] = {}
    text = resources.files("fhir_server.matching").joinpath("nicknames.csv").read_text()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        nickname, formal = (part.strip() for part in line.split(","))
        groups.setdefault(nickname, set()).add(formal)
        groups.setdefault(formal, set()).add(formal)
    return {key: frozenset(value) for key, value in groups.items()}


def formal_names(given: str) -> frozenset[str]:
    """The formal names a normalised given name may stand for (itself when none is known)."""
    return _nickname_groups().get(given, frozenset({given}))


def canonical_given(given: str) -> str:
    """One formal name for a given name (stable: the first alphabetically)."""
    return min(formal_names(given))


def nickname_of_each_other(first: str, second: str) -> bool:
    return first != second and bool(formal_names(first) & formal_names(second))


@lru_cache(maxsize=65536)
def phonetic(text: str) -> str:
    """NYSIIS code of a normalised name (its first word); "" for none."""
    word = text.split(" ")[0] if text else ""
    return str(jellyfish.nysiis(word)) if word else ""


def street(line: str | None) -> tuple[str, str]:
    """(house number, street words with abbreviations unified) of an address line."""
    words = name(line).split() if line else []
    number = ""
    if line:
        found = re.search(r"\d+[a-zA-Z]?", line)
        number = found.group(0).lower() if found else ""
    return number, " ".join(STREET_WORDS.get(word, word) for word in words)


def day_month_swapped(first: date, second: date) -> bool:
    return (first.year == second.year and first.month == second.day
            and first.day == second.month and first != second)


def one_digit_apart(first: date, second: date) -> bool:
    """The ISO texts differ in exactly one digit (a typing slip)."""
    a, b = first.isoformat(), second.isoformat()
    return sum(x != y for x, y in zip(a, b, strict=True)) == 1
