"""What an interaction returns; the HTTP layer turns it into status, headers and body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.stored import StoredResource


@dataclass(frozen=True)
class InteractionResult:
    """``stored`` drives ETag/Last-Modified (and Location when ``location``); ``body`` overrides
    the stored resource as the response body (a Bundle, an OperationOutcome)."""

    status: int
    resource_type: str
    stored: StoredResource | None = None
    body: dict[str, Any] | None = None
    location: bool = False
