"""The kick-off request of ``$export`` (https://hl7.org/fhir/uv/bulkdata/export.html#query-parameters),
parsed without touching storage: ``Prefer: respond-async`` is required, ``_outputFormat`` must
name NDJSON, ``_type`` lists types this level exports, ``_since`` is an instant. Parameters
the server does not support are refused with 400 naming them, unless the client sent
``Prefer: handling=lenient`` (then they are ignored)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fhir_server.errors import InvalidRequest
from mappings.fhir_dates import DateValueError, date_range

SYSTEM, PATIENT = "system", "patient"
EXPORTED_TYPES = ("Patient", "Coverage", "DocumentReference", "Communication",
                  "CommunicationRequest", "Binary")
"""What an export holds, in file order, of the types this server serves: the PRM's data. The
audit trail (AuditEvent) and the merge records (Provenance) are not exported. All of them
are in the Patient compartment (Binary through its securityContext or the DocumentReference
it is the content of), so both levels export the same types."""
OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
NOT_SUPPORTED = ("_typeFilter", "_elements", "includeAssociatedData", "patient", "_until",
                 "organizeOutputBy", "allowPartialManifests")
"""Parameters of the Bulk Data IG this server does not implement."""
IGNORED = frozenset({"_format", "_pretty"})
"""Parameters about the kick-off's own answer (an OperationOutcome), not the export."""


@dataclass(frozen=True)
class ExportRequest:
    level: str
    types: tuple[str, ...] | None
    """The ``_type`` asked for, in file order; None: every type the token may search."""
    since: str | None
    ignored: tuple[str, ...] = ()
    """Parameters left aside under ``Prefer: handling=lenient``."""


def _preferences(prefer: str | None) -> set[str]:
    return {token.strip().replace(" ", "").lower()
            for token in (prefer or "").replace(";", ",").split(",") if token.strip()}


def parse_kickoff(pairs: Sequence[tuple[str, str]], *, level: str, prefer: str | None,
                  served: Sequence[str]) -> ExportRequest:
    """The export asked for; InvalidRequest (400) naming what is wrong."""
    preferences = _preferences(prefer)
    if "respond-async" not in preferences:
        raise InvalidRequest("$export runs asynchronously: send 'Prefer: respond-async'")
    lenient = "handling=lenient" in preferences
    ignored: list[str] = []
    types: list[str] | None = None
    since: str | None = None
    for key, value in pairs:
        if key == "_type":
            types = (types or []) + [part.strip() for part in value.split(",") if part.strip()]
        elif key == "_since":
            if since is not None:
                raise InvalidRequest("$export takes one _since")
            since = _instant(value)
        elif key == "_outputFormat":
            _output_format(value)
        elif key in IGNORED:
            continue
        elif lenient:
            ignored.append(key)
        elif key in NOT_SUPPORTED:
            raise InvalidRequest(f"$export parameter '{key}' is not supported by this server "
                                 "(send 'Prefer: handling=lenient' to have it ignored)")
        else:
            raise InvalidRequest(f"$export has no parameter '{key[:40]}' (_type, _since, "
                                 "_outputFormat)")
    if types is not None:
        wrong = [kind for kind in types if kind not in served]
        if wrong:
            raise InvalidRequest(f"_type '{wrong[0][:64]}' is not exported here; exported "
                                 f"types: {', '.join(served)}")
        if not types:
            raise InvalidRequest("_type names no type")
        types = [kind for kind in served if kind in types]
    return ExportRequest(level, None if types is None else tuple(types), since,
                         tuple(dict.fromkeys(ignored)))


def _output_format(value: str) -> None:
    # an unencoded '+' in a query string reads as a space
    wanted = value.strip().lower().replace(" ", "+")
    if wanted not in OUTPUT_FORMATS:
        raise InvalidRequest(f"_outputFormat '{value[:60]}' is not supported: this server "
                             "writes application/fhir+ndjson (also accepted: "
                             "application/ndjson, ndjson)")


def _instant(value: str) -> str:
    text = value.strip().replace(" ", "+")  # an unencoded '+' of a time zone offset
    try:
        date_range(text)
    except DateValueError:
        raise InvalidRequest(f"_since '{value[:40]}' is not a FHIR instant") from None
    return text
