"""``fhir-server match scan`` and ``match train`` on SQLite and PostgreSQL: the same engine as
$match over the whole database."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fhir_server.cli import main
from fhir_server.matching.weights import MatchWeights
from fhir_server.settings import Settings
from tests.factories import FHIR_JSON


def _store(client: TestClient, resource_id: str, given: str, family: str, birth: str) -> None:
    body = {"resourceType": "Patient", "id": resource_id, "gender": "female",
            "name": [{"family": family, "given": [given]}], "birthDate": birth}
    assert client.put(f"/fhir/Patient/{resource_id}", json=body,
                      headers=FHIR_JSON).status_code == 201


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FHIR_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FHIR_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("FHIR_ENCRYPTION_KEYS", str(settings.encryption_keys))
    monkeypatch.setenv("FHIR_HASH_KEY", str(settings.hash_key))
    return settings


def test_scan_lists_each_duplicate_pair_once(client: TestClient, environment: Settings,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _store(client, "a1", "Ana", "Rivera", "1984-03-09")
    _store(client, "a2", "Anna", "Rivera", "1984-03-09")
    _store(client, "b1", "Li", "Nguyen", "2001-07-15")
    _store(client, "c1", "Zed", "Nobody", "1950-01-01")
    output = tmp_path / "pairs.csv"
    assert main(["match", "scan", "--output", str(output), "--min-grade", "possible"]) == 0
    rows = list(csv.DictReader(output.open()))
    assert [(row["first"], row["second"]) for row in rows] == [("a1", "a2")]
    assert rows[0]["grade"] in ("certain", "probable")
    assert "given partial" in rows[0]["reasons"]
    assert "match scan [" in capsys.readouterr().err


def test_train_writes_weights_the_server_can_load(client: TestClient, environment: Settings,
                                                  tmp_path: Path) -> None:
    for number in range(12):
        _store(client, f"p{number}", "Ana" if number % 2 else "Maria", "Rivera",
               f"19{60 + number}-03-09")
    _store(client, "dup", "Ana", "Rivera", "1961-03-09")
    output = tmp_path / "weights.json"
    assert main(["match", "train", "--sample", "50", "--output", str(output)]) == 0
    weights = MatchWeights.from_file(output)
    assert set(weights.levels) == set(MatchWeights().levels)
    assert 0 < weights.prior <= 0.5
    for table in weights.levels.values():
        for m, u in table.values():
            assert 0 < m <= 1 and 0 < u <= 1
