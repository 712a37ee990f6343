"""The matching engine alone: normal forms, comparison levels, weights and grades, and
properties that must hold for any records (hypothesis): the score is symmetric, and a record
with a given name, family name and birth date matches itself as certain."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.matching import normalise
from fhir_server.matching.compare import compare
from fhir_server.matching.keys import blocking_keys, query_keys
from fhir_server.matching.record import MatchRecord, record_from_resource, record_from_rows
from fhir_server.matching.score import rank, score_pair
from fhir_server.matching.weights import MatchWeights
from fhir_server.settings import Settings
from mappings.patient import MappingContext, resource_to_rows
from storage.crypto import load_cipher
from tests.conftest import TEST_ENCRYPTION_KEYS, TEST_HASH_KEY
from tests.factories import patient

WEIGHTS = MatchWeights()


def _record(resource_id: str = "x", **values: object) -> MatchRecord:
    base: dict[str, object] = {"given": "ana", "family": "rivera",
                               "birth_date": date(1984, 3, 9), "gender": "female"}
    base.update(values)
    return MatchRecord(resource_id=resource_id, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [
    ("O'Connell", "oconnell"), ("Müller-Lüdenscheidt", "muller ludenscheidt"),
    ("  JOSÉ  María ", "jose maria"), (None, ""), ("Ng.", "ng"),
])
def test_names_normalise(text: str | None, expected: str) -> None:
    assert normalise.name(text) == expected


def test_nicknames_and_streets() -> None:
    assert normalise.nickname_of_each_other("bob", "robert")
    assert normalise.nickname_of_each_other("bill", "will")  # both William
    assert not normalise.nickname_of_each_other("bob", "william")
    assert normalise.street("12 Elm Street Apt 4") == ("12", "elm st apt")
    assert normalise.street("12 Elm St.")[1] == normalise.street("12 elm street")[1]


@pytest.mark.parametrize(("query", "candidate", "field", "level"), [
    ({"family": "rivera"}, {"family": "rivera"}, "family", "exact"),
    ({"family": "riviera"}, {"family": "rivera"}, "family", "typo"),
    ({"family": "garcia lopez"}, {"family": "garcia"}, "family", "similar"),
    ({"family": "nguyen"}, {"family": "smith"}, "family", "disagree"),
    ({"given": "bob"}, {"given": "robert"}, "given", "nickname"),
    ({"given": "jonathon"}, {"given": "jonathan"}, "given", "typo"),
    ({"given": "a"}, {"given": "ana"}, "given", "initial"),
    ({"birth_date": date(1984, 9, 3)}, {"birth_date": date(1984, 3, 9)}, "birth_date", "swapped"),
    ({"birth_date": date(1984, 3, 8)}, {"birth_date": date(1984, 3, 9)}, "birth_date", "typo"),
    ({"birth_date": date(1990, 1, 1)}, {"birth_date": date(1984, 3, 9)}, "birth_date", "disagree"),
    ({"birth_date": None}, {}, "birth_date", None),
    ({"phones": frozenset({"+16174952000"})}, {"phones": frozenset({"+16174952000", "+1"})},
     "phone", "exact"),
    ({"ssn_hash": "a"}, {"ssn_hash": "b"}, "ssn", "disagree"),
    ({"given": "rivera", "family": "ana"}, {}, "family", "swapped"),
])
def test_comparison_levels(query: dict[str, object], candidate: dict[str, object], field: str,
                           level: str | None) -> None:
    assert compare(_record(**query), _record(**candidate))[field] == level


def test_exact_name_and_birth_date_is_certain_and_explained() -> None:
    result = score_pair(_record(), _record("y"), WEIGHTS)
    assert result.grade == "certain" and result.probability > 0.99
    assert {(f.field, f.outcome) for f in result.fields} >= {
        ("family", "agree"), ("given", "agree"), ("birth_date", "agree")}


@pytest.mark.parametrize(("candidate", "veto"), [
    ({"given": "maria"}, "given name not the same"),          # a twin
    ({"birth_date": date(1984, 3, 8)}, "birth_date not the same"),
    ({"ssn_hash": "other"}, "ssn"),
])
def test_vetoes_keep_close_records_from_certain(candidate: dict[str, object], veto: str) -> None:
    query = _record(ssn_hash="mine") if "ssn_hash" in candidate else _record()
    result = score_pair(query, _record("y", **candidate), WEIGHTS)
    assert result.grade != "certain"
    assert veto in result.vetoes


def test_certain_needs_a_margin_over_the_runner_up() -> None:
    results = rank(_record(), [_record("a"), _record("b")], WEIGHTS)
    assert [r.grade for r in results] == ["probable", "probable"]
    assert "no margin over the next candidate" in results[0].vetoes


def test_only_certain_returns_one_certain_or_nothing() -> None:
    far = _record("far", given="zed", family="nobody", birth_date=date(2001, 1, 1))
    assert [r.candidate.resource_id for r in rank(_record(), [_record("a"), far], WEIGHTS,
                                                  only_certain=True)] == ["a"]
    assert rank(_record(), [_record("a"), _record("b")], WEIGHTS, only_certain=True) == []


def test_common_family_names_weigh_less() -> None:
    rare = score_pair(_record(), _record("y"), WEIGHTS, lambda family: 0.00001)
    common = score_pair(_record(), _record("y"), WEIGHTS, lambda family: 0.02)
    assert rare.weight > common.weight


def test_record_from_resource_reads_what_matching_needs() -> None:
    resource = {"resourceType": "Patient", "id": "p",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123456789"},
                               {"system": "urn:ehr", "value": "E1"}],
                "name": [{"use": "nickname", "given": ["Annie"]},
                         {"use": "official", "family": "Rivera", "given": ["Ana", "Lucía"]}],
                "telecom": [{"system": "phone", "value": "(617) 495-2000"},
                            {"system": "email", "value": "Ana@Example.org"}],
                "birthDate": "1984-03-09", "gender": "female",
                "address": [{"line": ["12 Elm Street"], "postalCode": "02115-1234"}]}
    record = record_from_resource(resource, phone_region="US", hash_ssn=lambda s: f"h{s}")
    assert (record.given, record.family, record.other_given) == ("ana", "rivera", ("lucia",))
    assert record.ssn_hash == "h123-45-6789"
    assert record.phones == {"+16174952000"} and record.emails == {"ana@example.org"}
    assert record.identifiers == {("urn:ehr", "E1")}
    assert (record.postcode, record.house_number) == ("02115", "12")
    keys = blocking_keys(record)
    assert "d:1984-03-09" in keys and "s:h123-45-6789" in keys and "f:rivera" in keys
    assert set(keys) - {"f:rivera"} <= set(query_keys(record))


NAMES = st.sampled_from(["ana", "maria", "jose", "robert", "bob", "li", "nguyen", "smith",
                         "rivera", "oconnell", "muller", "garcia lopez", "x"])
DATES = st.one_of(st.none(), st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)))
RECORDS = st.builds(
    MatchRecord, resource_id=st.sampled_from(["a", "b"]), given=NAMES, family=NAMES,
    birth_date=DATES, gender=st.sampled_from(["", "female", "male"]),
    phones=st.frozensets(st.sampled_from(["+16174952000", "+16175550100"]), max_size=2),
    ssn_hash=st.sampled_from(["", "h1", "h2"]),
    postcode=st.sampled_from(["", "02115", "60652"]))


@settings(max_examples=300, deadline=None)
@given(first=RECORDS, second=RECORDS)
def test_score_is_symmetric(first: MatchRecord, second: MatchRecord) -> None:
    forward = score_pair(first, second, WEIGHTS)
    backward = score_pair(second, first, WEIGHTS)
    assert forward.weight == pytest.approx(backward.weight)
    assert forward.grade == backward.grade


@settings(max_examples=300, deadline=None)
@given(record=RECORDS, birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)))
def test_a_record_matches_itself_as_certain(record: MatchRecord, birth: date) -> None:
    complete = MatchRecord(**{**record.__dict__, "birth_date": birth})
    result = score_pair(complete, complete, WEIGHTS)
    assert result.grade == "certain", result


def test_records_from_rows_equal_records_from_resources(tmp_path: Path) -> None:
    cipher = load_cipher(Settings(data_dir=tmp_path, encryption_keys=TEST_ENCRYPTION_KEYS,
                                  hash_key=TEST_HASH_KEY))
    context = MappingContext(cipher=cipher, phone_region="US", mrn_system="urn:prm:mrn")
    samples = [
        patient(),
        patient(identifier=[{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123456789"},
                            {"system": "urn:ehr", "value": "E1"}],
                name=[{"use": "nickname", "given": ["Annie"]},
                      {"use": "official", "family": "Müller", "given": ["José", "Luis"]}],
                birthDate="1984-03"),
        {"resourceType": "Patient", "name": [{"text": "Ana Rivera"}]},
    ]
    for resource in samples:
        rows = resource_to_rows(resource, resource_id="r", version_id=1,
                                last_updated=datetime.now(UTC), mrn="MRN-1", context=context)
        expected = record_from_resource(resource | {"id": "r"}, phone_region="US",
                                        hash_ssn=cipher.search_hash, mrn_system="urn:prm:mrn")
        assert record_from_rows(rows, mrn_system="urn:prm:mrn") == expected
