"""Start-up checks: an invalid configuration stops ``fhir-server`` with a message naming the
setting, on both databases."""

from __future__ import annotations

import pytest

from fhir_server.cli import main
from fhir_server.settings import Settings
from fhir_server.startup_checks import ConfigurationError, check_environment, load_settings


def _problems(settings: Settings) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        check_environment(settings)
    return caught.value.problems


def test_working_configuration_passes(settings: Settings) -> None:
    check_environment(settings)


@pytest.mark.parametrize(("variable", "value"), [("FHIR_LOG_LEVEL", "loud"),
                                                 ("FHIR_DB_POOL_SIZE", "ten"),
                                                 ("FHIR_BINARY_REDIRECT", "perhaps")])
def test_unparsable_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                             value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.startswith(f"{variable}: ")


def test_log_level_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FHIR_LOG_LEVEL", "WARNING")
    assert load_settings().log_level == "warning"


def test_unreachable_database_names_the_url_without_its_password(settings: Settings) -> None:
    broken = settings.model_copy(update={
        "database_url": "postgresql+psycopg://fhir:s3cret@127.0.0.1:1/nowhere"})
    [problem] = _problems(broken)
    assert problem.startswith("FHIR_DATABASE_URL: cannot connect to ")
    assert "127.0.0.1:1/nowhere" in problem and "s3cret" not in problem


def test_unusable_blob_url_names_the_setting(settings: Settings) -> None:
    [problem] = _problems(settings.model_copy(update={"blob_url": "ftp://files/blobs"}))
    assert "FHIR_BLOB_URL" in problem


def test_missing_s3_bucket_names_the_setting(settings: Settings, s3_bucket: str) -> None:
    check_environment(settings.model_copy(update={"blob_url": f"s3://{s3_bucket}/fhir"}))
    [problem] = _problems(settings.model_copy(update={"blob_url": "s3://no-such-bucket-here"}))
    assert problem.startswith("FHIR_BLOB_URL: the S3 bucket 'no-such-bucket-here'")


def test_serve_stops_with_exit_2_and_the_setting_named(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    monkeypatch.setenv("FHIR_LOG_LEVEL", "loud")
    monkeypatch.setenv("FHIR_DATABASE_URL", "postgresql+psycopg://fhir@127.0.0.1:1/nowhere")
    assert main(["serve"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("fhir-server: invalid configuration:\n  FHIR_LOG_LEVEL: ")


def test_worker_stops_when_the_database_is_unreachable(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    monkeypatch.setenv("FHIR_DATABASE_URL", "postgresql+psycopg://fhir@127.0.0.1:1/nowhere")
    assert main(["worker", "--once"]) == 2
    assert "FHIR_DATABASE_URL: cannot connect to" in capsys.readouterr().err
