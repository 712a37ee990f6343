"""Blocking keys: short texts under which a patient is indexed (``patient_match_keys``) so
that candidates for a query are found by index lookups, never by scanning the table. A query
looks up its own keys plus variants for common slips (day and month swapped, given and family
swapped); nicknames share their formal name's key."""

from __future__ import annotations

from datetime import date

from fhir_server.matching.normalise import canonical_given, phonetic
from fhir_server.matching.record import MatchRecord


def _swapped(birth: date) -> date | None:
    try:
        return birth.replace(month=birth.day, day=birth.month)
    except ValueError:
        return None


def blocking_keys(record: MatchRecord) -> list[str]:
    """The keys a stored patient is indexed under (each at most 200 characters)."""
    keys: list[str] = [f"f:{record.family}"] if record.family else []
    family = phonetic(record.family)
    given = phonetic(canonical_given(record.given)) if record.given else ""
    if record.birth_date:
        keys.append(f"d:{record.birth_date.isoformat()}")
        if family:
            keys.append(f"fy:{family}:{record.birth_date.year}")
    if family and given:
        keys.append(f"fg:{family}:{given}")
    keys += [f"p:{phone}" for phone in sorted(record.phones)]
    keys += [f"e:{email}" for email in sorted(record.emails)]
    if record.ssn_hash:
        keys.append(f"s:{record.ssn_hash}")
    keys += [f"i:{system}|{value}" for system, value in sorted(record.identifiers)]
    if record.postcode and record.given and record.family:
        keys.append(f"z:{record.postcode}:{record.given[0]}{record.family[0]}")
    return [key[:200] for key in dict.fromkeys(keys)]


def family_key(family: str) -> str:
    """The key counting how many patients share a (normalised) family name."""
    return f"f:{family}"[:200]


def query_keys(record: MatchRecord) -> list[str]:
    """The keys to look up for a query: its own and those of its likely slips (not the
    family-name key, which only counts how common a name is)."""
    keys = [key for key in blocking_keys(record) if not key.startswith("f:")]
    if record.birth_date:
        swapped = _swapped(record.birth_date)
        if swapped and swapped != record.birth_date:
            keys.append(f"d:{swapped.isoformat()}")
    if record.given and record.family:
        keys.append(f"fg:{phonetic(record.given)}:{phonetic(canonical_given(record.family))}")
        keys.append(f"fg:{phonetic(record.family)}:{phonetic(record.given)}")
        if record.birth_date:
            keys.append(f"fy:{phonetic(record.given)}:{record.birth_date.year}")
    return [key[:200] for key in dict.fromkeys(keys)]
