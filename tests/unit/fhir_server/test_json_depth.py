"""JSON nesting limit: counted over objects and arrays, iteratively, at the request's limit."""

from __future__ import annotations

import contextvars
from typing import Any

import pytest

from fhir_server.errors import InvalidRequest
from fhir_server.validation.json_depth import DEFAULT_MAX_DEPTH, check_depth, use_max_depth
from fhir_server.validation.resource import parse_json


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def test_depth_at_the_limit_is_accepted() -> None:
    check_depth(_nested(DEFAULT_MAX_DEPTH))


def test_depth_over_the_limit_names_the_limit() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_depth(_nested(DEFAULT_MAX_DEPTH + 1))
    assert "FHIR_MAX_JSON_DEPTH" in str(caught.value)
    assert f"{DEFAULT_MAX_DEPTH} levels" in str(caught.value)


def test_parse_json_refuses_a_body_deeper_than_the_request_limit() -> None:
    def parse() -> None:
        use_max_depth(3)
        parse_json(b'{"a":[{"b":1}]}')
        with pytest.raises(InvalidRequest, match="3 levels"):
            parse_json(b'{"a":[{"b":[1]}]}')
    contextvars.copy_context().run(parse)
    parse_json(b'{"a":[{"b":[1]}]}')  # the default applies outside that request


def test_parse_json_reports_the_limit_for_bodies_beyond_the_parser_limit() -> None:
    with pytest.raises(InvalidRequest, match="FHIR_MAX_JSON_DEPTH"):
        parse_json(b"[" * 5000 + b"]" * 5000)


def test_wide_values_are_not_too_deep() -> None:
    check_depth({"a": [{"b": 1}] * 10_000, "c": list(range(10_000))})
