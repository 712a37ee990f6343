"""fhir_server.http.negotiation: https://hl7.org/fhir/R4/http.html#mime-type. FHIR JSON and
FHIR XML are served; asking only for another format is 406, sending a body the handlers cannot
read is 415 (XML bodies reach them as JSON)."""

from __future__ import annotations

import pytest

from fhir_server.errors import NotAcceptable, UnsupportedMediaType
from fhir_server.http.negotiation import (
    FHIR_JSON,
    FHIR_XML,
    JSON_PATCH,
    check_body_type,
    response_format,
)

# -------------------------------------------------------------------- response format


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "application/fhir+json",
        "application/json",
        "text/json",
        "*/*",
        "application/*",
        "application/fhir+json; fhirVersion=4.0",
        "APPLICATION/FHIR+JSON",
        "text/html, application/xhtml+xml, */*;q=0.8",
        "application/fhir+xml;q=0.1, application/fhir+json;q=0.9",
        "application/fhir+json, application/fhir+xml",
    ],
)
def test_json_is_served_when_accepted(accept: str | None) -> None:
    assert response_format(accept, None) == FHIR_JSON


@pytest.mark.parametrize(
    "accept",
    ["application/fhir+xml", "application/xml", "text/xml", "APPLICATION/FHIR+XML;fhirVersion=4.0",
     "application/fhir+xml;q=0.9, application/fhir+json;q=0.1", "text/html, application/xml"],
)
def test_xml_is_served_when_preferred(accept: str) -> None:
    assert response_format(accept, None) == FHIR_XML


@pytest.mark.parametrize(
    "accept",
    [
        "text/html",
        "text/plain, text/html",
        "application/fhir+json;q=0",
        "application/json;q=abc",
    ],
)
def test_only_other_formats_accepted_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        response_format(accept, None)


def test_406_names_the_format_served() -> None:
    with pytest.raises(NotAcceptable) as error:
        response_format("text/html", None)
    assert FHIR_JSON in str(error.value)


@pytest.mark.parametrize(
    "format_parameter",
    ["json", "JSON", "application/fhir+json", "application/fhir json", "application/json",
     "text/json", " json "],
)
def test_format_parameter_asking_for_json_is_served(format_parameter: str) -> None:
    assert response_format(None, format_parameter) == FHIR_JSON


@pytest.mark.parametrize("format_parameter", ["xml", "application/fhir+xml", "text/xml",
                                              "application/xml", "XML"])
def test_format_parameter_asking_for_xml_is_served(format_parameter: str) -> None:
    assert response_format(None, format_parameter) == FHIR_XML


@pytest.mark.parametrize("format_parameter", ["ttl", "html", "application/fhir+turtle"])
def test_format_parameter_asking_for_other_format_is_406(format_parameter: str) -> None:
    with pytest.raises(NotAcceptable):
        response_format(None, format_parameter)


def test_format_parameter_overrides_accept() -> None:
    assert response_format("application/fhir+xml", "json") == FHIR_JSON


def test_format_parameter_xml_overrides_json_accept() -> None:
    assert response_format(FHIR_JSON, "xml") == FHIR_XML


def test_406_diagnostics_truncate_a_huge_accept_header() -> None:
    with pytest.raises(NotAcceptable) as error:
        response_format("text/html," * 1000, None)
    assert len(str(error.value)) < 400


# ------------------------------------------------------------------------- body type


@pytest.mark.parametrize(
    "content_type",
    [None, "", "  ", "application/fhir+json", "application/json",
     "application/fhir+json; charset=utf-8", "Application/FHIR+JSON;fhirVersion=4.0"],
)
def test_json_body_is_accepted(content_type: str | None) -> None:
    check_body_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/fhir+xml", "application/xml", "multipart/form-data",
     "application/x-www-form-urlencoded", JSON_PATCH],
)
def test_other_body_type_is_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        check_body_type(content_type)


def test_415_names_what_to_send() -> None:
    with pytest.raises(UnsupportedMediaType) as error:
        check_body_type("text/plain")
    assert "application/fhir+json" in str(error.value)


def test_patch_body_accepts_json_patch() -> None:
    check_body_type(JSON_PATCH, allowed=frozenset({JSON_PATCH}))


def test_patch_body_refuses_fhir_json() -> None:
    with pytest.raises(UnsupportedMediaType):
        check_body_type(FHIR_JSON, allowed=frozenset({JSON_PATCH}))
