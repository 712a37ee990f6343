"""Labelled data for Patient matching: a clean population, duplicates of some of its people
with realistic corruption, and queries whose true match was never stored (strangers, twins,
household members). Deterministic for a seed.

A query never carries the stored EHR record number (another system would have its own);
``with_ssn`` decides whether queries keep the SSN (about 30 % of people have one)."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from benchmarks import synthetic_patients as synthetic
from fhir_server.matching.normalise import _nickname_groups

SSN_SYSTEM = synthetic.SSN_SYSTEM
NICKNAMES = {formal: sorted(nick for nick, formals in _nickname_groups().items()
                            if formal in formals and nick != formal)
             for formal in {f for formals in _nickname_groups().values() for f in formals}}


@dataclass(frozen=True)
class Query:
    """A $match query and the id of the stored patient it truly is (None: not stored)."""

    kind: str
    resource: dict[str, Any]
    truth: str | None
    corruptions: tuple[str, ...] = ()


def _name(resource: dict[str, Any]) -> dict[str, Any]:
    name: dict[str, Any] = resource["name"][0]
    return name


def _typo(text: str, rng: random.Random) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    action = rng.choice(("swap", "drop", "replace"))
    if action == "swap":
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if action == "drop":
        return text[:i] + text[i + 1:]
    return text[:i] + rng.choice("aeiourstnl") + text[i + 1:]


def _given_typo(resource: dict[str, Any], rng: random.Random) -> None:
    name = _name(resource)
    name["given"][0] = _typo(name["given"][0], rng)


def _family_typo(resource: dict[str, Any], rng: random.Random) -> None:
    name = _name(resource)
    name["family"] = _typo(name["family"], rng)


def _nickname(resource: dict[str, Any], rng: random.Random) -> None:
    name = _name(resource)
    options = NICKNAMES.get(synthetic.ascii_slug(name["given"][0]))
    if options:
        name["given"][0] = rng.choice(options).capitalize()
    else:
        _given_typo(resource, rng)


def _swap_day_month(resource: dict[str, Any], rng: random.Random) -> None:
    born = date.fromisoformat(resource["birthDate"])
    if born.day <= 12 and born.day != born.month:
        resource["birthDate"] = born.replace(month=born.day, day=born.month).isoformat()
    else:
        _birth_digit(resource, rng)


def _birth_digit(resource: dict[str, Any], rng: random.Random) -> None:
    """One digit of the day mistyped (``1984-03-19`` for ``1984-03-09``)."""
    born = date.fromisoformat(resource["birthDate"])
    tens, ones = divmod(born.day, 10)
    for _ in range(10):
        candidate = tens * 10 + rng.randrange(10) if rng.random() < 0.7 \
            else rng.randrange(4) * 10 + ones
        if 1 <= candidate <= 28 and candidate != born.day:
            resource["birthDate"] = born.replace(day=candidate).isoformat()
            return


def _moved(resource: dict[str, Any], rng: random.Random) -> None:
    resource["address"] = [{"line": [f"{rng.randrange(1, 999)} New Street"],
                            "city": "Elsewhere", "postalCode": f"{rng.randrange(10000, 99999)}"}]


def _new_phone(resource: dict[str, Any], rng: random.Random) -> None:
    resource["telecom"] = [t for t in resource.get("telecom", []) if t["system"] != "phone"]
    resource["telecom"].append({"system": "phone",
                                "value": f"+1 312 {rng.randrange(200, 999)} {rng.randrange(10000):04d}"})


def _missing(resource: dict[str, Any], rng: random.Random) -> None:
    field = rng.choice(("telecom", "address", "gender"))
    resource.pop(field, None)


CORRUPTIONS: dict[str, Callable[[dict[str, Any], random.Random], None]] = {
    "given typo": _given_typo, "family typo": _family_typo, "nickname": _nickname,
    "day/month swapped": _swap_day_month, "birth date slip": _birth_digit,
    "moved": _moved, "new phone": _new_phone, "missing field": _missing,
}


def as_query(resource: dict[str, Any], *, with_ssn: bool) -> dict[str, Any]:
    """What another system would send: no ids, no EHR number; the SSN only ``with_ssn``."""
    query = copy.deepcopy(resource)
    query.pop("id", None)
    query["identifier"] = [i for i in query.get("identifier", [])
                           if with_ssn and i.get("system") == SSN_SYSTEM]
    if not query["identifier"]:
        del query["identifier"]
    return query


@dataclass(frozen=True)
class Dataset:
    stored: list[tuple[str, dict[str, Any]]]
    queries: list[Query]


def build(seed: int, population: int, duplicates: int, strangers: int, families: int,
          *, with_ssn: bool) -> Dataset:
    rng = random.Random(seed)
    people = synthetic.batch(seed, 0, population)
    stored = [(p.resource_id, p.resource) for p in people]
    queries: list[Query] = []
    for person in rng.sample(people, duplicates):
        resource = as_query(person.resource, with_ssn=with_ssn)
        chosen = tuple(rng.sample(sorted(CORRUPTIONS), rng.choice((1, 1, 2))))
        for corruption in chosen:
            CORRUPTIONS[corruption](resource, rng)
        queries.append(Query("duplicate", resource, person.resource_id, chosen))
    for stranger in synthetic.batch(seed + 1, population, strangers):
        queries.append(Query("absent", as_query(stranger.resource, with_ssn=with_ssn), None))
    relatives = synthetic.batch(seed + 2, population + strangers, families * 2)
    for number in range(families):
        anchor = people[number]
        for kind, relative in (("twin", relatives[2 * number]),
                               ("household", relatives[2 * number + 1])):
            resource = as_query(relative.resource, with_ssn=with_ssn)
            _name(resource)["family"] = _name(anchor.resource)["family"]
            resource["address"] = copy.deepcopy(anchor.resource["address"])
            if kind == "twin":  # same birth date, phone and home; another given name
                resource["birthDate"] = anchor.resource["birthDate"]
                resource["telecom"] = copy.deepcopy([t for t in anchor.resource["telecom"]
                                                     if t["system"] == "phone"])
                anchor_given = _name(anchor.resource)["given"][0]
                if _name(resource)["given"][0] == anchor_given:
                    _name(resource)["given"][0] = "Jordan" if anchor_given != "Jordan" else "Alex"
            queries.append(Query(kind, resource, None))
    return Dataset(stored, queries)
