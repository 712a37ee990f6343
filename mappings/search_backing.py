"""What backs each search parameter: each mapping declares, per parameter, which column or
child table holds its values; the search compiler (``storage.search_sql``) turns a parsed
parameter and its backing into SQL. One declaration type per way of storing values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Haystack:
    """A string parameter: normalised and exact ``|field|field|`` columns of the main table."""

    normalised: str
    exact: str
    phonetic: bool = False


@dataclass(frozen=True)
class IdColumn:
    """``_id``: the main table's primary key."""


@dataclass(frozen=True)
class CodeColumn:
    """A token held in one main-table column; ``system`` is the code system of its values
    (None: any system accepted), ``boolean`` for true/false tokens."""

    column: str
    system: str | None = None
    boolean: bool = False


@dataclass(frozen=True)
class StatusFlag:
    """A boolean token true when the ``column`` equals ``value`` (``deceased``)."""

    column: str
    value: str


@dataclass(frozen=True)
class IdentifierRows:
    """``identifier``: the identifier child table (system, value, keyed hash) and, for
    ``:of-type``, the table of its type codings (one row per coding)."""


@dataclass(frozen=True)
class TelecomRows:
    """``telecom``/``phone``/``email``: the telecom child table, optionally one system only."""

    system: str | None = None


@dataclass(frozen=True)
class TokenRows:
    """A token stored as rows (param, system, code, text) of the token child table;
    ``of_type``: an Identifier parameter, whose ``:of-type`` values are rows too
    (``search_rows.TokenRows.identifier``)."""

    of_type: bool = False


@dataclass(frozen=True)
class ReferenceRows:
    """A reference stored as rows (param, target type, target id, url) of the reference table.
    ``stored_as``: when not empty, the parameter has no rows of its own and is served by the
    rows of these parameters that point at one of ``target_types`` (AuditEvent ``patient``:
    the Patient ``entity`` and ``agent`` rows, so each Patient is stored once)."""

    target_types: tuple[str, ...]
    stored_as: tuple[str, ...] = ()


@dataclass(frozen=True)
class DateRange:
    """A date parameter: the target's lowest and highest instant as two main-table columns
    (``date`` columns are whole days)."""

    low: str
    high: str
    is_date: bool = False


@dataclass(frozen=True)
class SetFlag:
    """A boolean token true when the main-table ``column`` holds a value (``merged``)."""

    column: str


@dataclass(frozen=True)
class CompositeRows:
    """A token$reference composite stored as token rows of its parameter: the token's code in
    ``system`` and the reference as ``Type/id`` in ``code``."""


@dataclass(frozen=True)
class PatientCompartment:
    """Membership of a patient's compartment (never a client's parameter: access control adds
    it): the resource is the patient (``self_id``), refers to it through one of the reference
    ``params``, or names it in the main-table ``column`` (Binary.securityContext)."""

    params: tuple[str, ...] = ()
    self_id: bool = False
    column: str | None = None


Backing = (Haystack | IdColumn | CodeColumn | StatusFlag | IdentifierRows | TelecomRows
           | TokenRows | ReferenceRows | DateRange | CompositeRows | SetFlag | PatientCompartment)


@dataclass(frozen=True)
class SearchParameter:
    """One supported search parameter: FHIR type (string, token, date, reference, uri),
    its backing, and the column ``_sort`` orders by (None: not sortable)."""

    type: str
    backing: Backing
    sort_column: str | None = None
    documentation: str = ""
