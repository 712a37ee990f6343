"""Every table of the schema on one ``metadata`` (importing this registers them all): what the
migrations and the tests see."""

from __future__ import annotations

from storage import (
                 audit_tables,
                 console_tables,
                 coverage_tables,
                 export_tables,
                 media_tables,
                 messaging_tables,
                 tables,
)
from storage.tables import metadata

TABLE_MODULES = (tables, media_tables, messaging_tables, audit_tables, console_tables,
                 coverage_tables, export_tables)

__all__ = ["TABLE_MODULES", "metadata"]
