"""Keeps PHI out of logs that libraries write: their DEBUG lines carry statement parameters
(aiosqlite logs every call with its arguments), so they are capped at INFO whatever
``FHIR_LOG_LEVEL`` says. The server's own loggers never log resource content, search values
or addresses in clear (``tests/integration/test_no_phi_in_logs.py`` holds them to it), and
SQLAlchemy engines are built with ``hide_parameters``."""

from __future__ import annotations

import logging

PARAMETER_LOGGERS = ("aiosqlite",)
"""Libraries whose DEBUG lines include SQL parameters."""


def keep_phi_out_of_logs() -> None:
    """Caps the parameter-logging libraries at INFO (idempotent)."""
    for name in PARAMETER_LOGGERS:
        library = logging.getLogger(name)
        if library.level < logging.INFO:  # NOTSET included: the root level would apply
            library.setLevel(logging.INFO)
