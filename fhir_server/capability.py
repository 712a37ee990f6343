"""The CapabilityStatement: ``capability_statement.json`` with the runtime fields filled in."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from fhir_server import SOFTWARE_NAME, __version__

FILE_NAME = "capability_statement.json"


def statement_path() -> Path:
    """The shipped statement: beside the package in a checkout, under share/ when installed."""
    in_checkout = Path(__file__).resolve().parents[1] / FILE_NAME
    if in_checkout.exists():
        return in_checkout
    return Path(sys.prefix) / "share" / SOFTWARE_NAME / FILE_NAME


def load_capability_statement(*, base_url: str, started_at: str,
                              security: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = orjson.loads(statement_path().read_bytes())
    if security is not None:
        for rest in statement.get("rest", []):
            rest["security"] = security
    statement["date"] = started_at
    statement["software"] = {"name": SOFTWARE_NAME, "version": __version__}
    statement["implementation"] = {
        "description": statement.get("implementation", {}).get("description", SOFTWARE_NAME),
        "url": base_url,
    }
    return statement
