"""Patient names with punctuation and several words: string search and ``_sort`` over one fixed
dataset, on SQLite and PostgreSQL. R4 string search ignores case, accents, punctuation and
non-significant whitespace (https://hl7.org/fhir/R4/search.html#string); this server drops
apostrophes (O'Brien is obrien), breaks words at any other punctuation (García-López is
garcia lopez) and matches the start of any word of a part. ``_sort`` orders by the normalised
value of the first usual or official name (else the first name), ties by id, nulls last.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import FHIR_JSON
from tests.integration.test_patient_search_tables import encode, link, match_ids

NAMES: dict[str, list[dict[str, Any]]] = {
    "n01": [{"use": "official", "family": "O'Brien", "given": ["Seán"]}],
    "n02": [{"use": "official", "family": "García-López", "given": ["María José"]}],
    "n03": [{"use": "official", "family": "De La Cruz", "given": ["Juan"]}],
    "n04": [{"use": "usual", "family": "Zimmer", "given": ["Anna"]},
            {"use": "official", "family": "Adams", "given": ["Anna"]}],
    "n05": [{"use": "nickname", "family": "Aaron"},
            {"use": "official", "family": "Óbrien", "given": ["Zoë"]}],
    "n06": [{"use": "maiden", "family": "Émile"}, {"use": "old", "family": "Young"}],
    "n07": [],
    "n08": [{"use": "official", "family": "müller", "given": ["ángel"]}],
    "n09": [{"text": "Dr. Who"}],
    "n10": [{"use": "official", "family": "Cruz", "given": ["Ana"]}],
}

SEARCH_CASES: list[tuple[str, str]] = [
    ("family=obrien", "n01 n05"),
    ("family=o'brien", "n01 n05"),
    ("family=O’BRIEN", "n01 n05"),
    ("family=brien", ""),
    ("family=lopez", "n02"),
    ("family=garcia-lopez", "n02"),
    ("family=garcia lopez", "n02"),
    ("family=garcía  lópez", "n02"),  # repeated spaces are not significant
    ("family=cruz", "n03 n10"),
    ("family=de la cruz", "n03"),
    ("family=la cruz", "n03"),
    ("family=de la", "n03"),
    ("family=dela", ""),
    ("family=aaron", "n05"),  # every name is searched, not only the one sorted by
    ("family=adams", "n04"),
    ("family=young", "n06"),
    ("name=cruz", "n03 n10"),
    ("name=de la cruz", "n03"),
    ("name=who", "n09"),
    ("name=dr. who", "n09"),
    ("given=jose", "n02"),
    ("given=maria jose", "n02"),
    ("given=maría-josé", "n02"),
    ("given=sean", "n01"),
    ("family:exact=De La Cruz", "n03"),
    ("family:exact=de la cruz", ""),
    ("family:exact=O'Brien", "n01"),
    ("family:exact=OBrien", ""),
    ("family:contains=la cr", "n03"),
    ("family:contains=rien", "n01 n05"),
    ("family:contains=a-lo", "n02"),
    ("name:contains=r. wh", "n09"),
    ("phonetic=cruz", "n03 n10"),
    ("phonetic=lopez", "n02"),
    ("family:missing=true", "n07 n09"),
]

SORT_CASES: list[tuple[str, str]] = [
    ("_sort=family", "n10 n03 n06 n02 n08 n01 n05 n04 n07 n09"),
    ("_sort=-family", "n04 n01 n05 n08 n02 n06 n03 n10 n07 n09"),
    ("_sort=given", "n10 n08 n04 n03 n02 n01 n05 n06 n07 n09"),
    ("_sort=-given", "n05 n01 n02 n03 n04 n08 n10 n06 n07 n09"),
    ("_sort=name", "n10 n03 n09 n06 n02 n08 n01 n05 n04 n07"),
    ("_sort=-name", "n04 n05 n01 n08 n02 n06 n09 n03 n10 n07"),
    ("_sort=family,given", "n10 n03 n06 n02 n08 n01 n05 n04 n07 n09"),
    ("_sort=family,-given", "n10 n03 n06 n02 n08 n05 n01 n04 n07 n09"),
    ("_sort=-family,-_id", "n04 n05 n01 n08 n02 n06 n03 n10 n09 n07"),
    ("_sort=family&family=obrien,cruz", "n10 n03 n01 n05"),
    # values of three letters and more under a name sort: PostgreSQL sorts the matches
    ("_sort=-family&name=cruz,obrien", "n01 n05 n03 n10"),
    ("_sort=given&name=cruz,obrien", "n10 n03 n01 n05"),
    ("_sort=family,-given&family:contains=ruz,rien", "n10 n03 n05 n01"),
]
FENCED = SORT_CASES[-4:]


def _create(client: TestClient) -> None:
    for patient_id, names in NAMES.items():
        body: dict[str, Any] = {"resourceType": "Patient", "id": patient_id}
        if names:
            body["name"] = names
        response = client.put(f"/fhir/Patient/{patient_id}", json=body, headers=FHIR_JSON)
        assert response.status_code == 201, response.text


def _ids(client: TestClient, query: str) -> list[str]:
    response = client.get(f"/fhir/Patient?{encode(query)}")
    assert response.status_code == 200, (query, response.text)
    return match_ids(response.json())


def test_names_are_found_by_any_word_without_punctuation(client: TestClient) -> None:
    _create(client)
    failures = [f"{query}: expected {sorted(spec.split())}, got {sorted(found)}"
                for query, spec in SEARCH_CASES
                if sorted(found := _ids(client, query)) != sorted(spec.split())]
    assert not failures, "\n".join(failures)


def test_name_sorts_follow_the_normalised_chosen_name(client: TestClient) -> None:
    _create(client)
    failures = [f"{query}: expected {spec}, got {' '.join(found)}"
                for query, spec in SORT_CASES
                if (found := _ids(client, query)) != spec.split()]
    assert not failures, "\n".join(failures)


def _paged_ids(client: TestClient, query: str, count: int) -> list[str]:
    """The ids of every page of ``query``, following ``next`` links."""
    seen: list[str] = []
    url: str | None = f"/fhir/Patient?{encode(query)}&_count={count}"
    while url:
        bundle = client.get(url).json()
        seen += match_ids(bundle)
        url = link(bundle, "next")
        assert len(seen) <= len(NAMES), query
    return seen


def test_name_sorts_page_through_every_patient_once(client: TestClient) -> None:
    _create(client)
    for query, spec in SORT_CASES[:6]:
        assert _paged_ids(client, query, 3) == spec.split(), query


def test_sorted_matches_of_name_searches_page_through_once(client: TestClient) -> None:
    """The sorts PostgreSQL runs on the matches (``storage.sort_fence``) page like the others."""
    _create(client)
    for query, spec in FENCED:
        assert _paged_ids(client, query, 1) == spec.split(), query
