"""Compile typed search clauses into SQL conditions over the mapped columns and child tables.
One function per parameter type; the backing a mapping declares says where values live.
https://hl7.org/fhir/R4/search.html"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Text,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import False_
from sqlalchemy.sql.functions import FunctionElement

from fhir_server.search.query import Clause
from fhir_server.search.values import (
    CompositeValue,
    DateValue,
    MissingValue,
    ReferenceValue,
    SearchValue,
    StringValue,
    TokenValue,
    TypedIdentifierValue,
)
from mappings.contact_points import ContactPointError, phone_to_e164
from mappings.patient_search import phonetic_code
from mappings.search_backing import (
    CodeColumn,
    CompositeRows,
    DateRange,
    Haystack,
    IdColumn,
    IdentifierRows,
    PatientCompartment,
    ReferenceRows,
    SearchParameter,
    SetFlag,
    StatusFlag,
    TelecomRows,
    TokenRows,
)
from mappings.search_rows import of_type_param, of_type_system, split_reference
from mappings.search_text import SEPARATOR, escape_like, fold, needle, normalise
from storage.crypto import FieldCipher
from terminology import systems

Condition = ColumnElement[bool]


class position_of(FunctionElement[int]):
    """1-based position of a substring, case-sensitive on every backend (0 when absent)."""

    type = Integer()
    inherit_cache = True


@compiles(position_of)
def _position_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(position_of, "postgresql")
def _position_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


def _same_literal(table: FromClause, reference: str) -> Condition:
    """Reference rows whose stored literal is ``reference``. Such a row's target id is the one
    ``reference`` parses to (``ReferenceRows.add`` writes them so), and saying it makes the
    condition an index range on (param, target_id): ``url = ...`` alone, under an OR, made
    PostgreSQL read every row of the parameter (an AuditEvent ``patient`` search over 780k
    rows: 0.16 s with statistics, 2.1 s without; 22-30 ms now)."""
    _, target_id = split_reference(reference)
    same_target = (table.c.target_id == target_id if target_id is not None
                   else table.c.target_id.is_(None))
    return and_(same_target, table.c.url == reference)


class SearchSql:
    """Conditions over one type's main table (``main``) and its child tables, whose rows point
    at their resource through the ``owner`` column. ``peers`` holds the compilers of every
    served type, for chained parameters and ``_has`` across types."""

    def __init__(self, resource_type: str, main: FromClause, children: Mapping[str, FromClause],
                 *, owner: str, cipher: FieldCipher, phone_region: str,
                 peers: dict[str, SearchSql] | None = None,
                 parameters: Mapping[str, SearchParameter] | None = None) -> None:
        self.resource_type = resource_type
        self.parameters: Mapping[str, SearchParameter] = parameters or {}
        self.main = main
        self.children = children
        self.owner = owner
        self.cipher = cipher
        self.phone_region = phone_region
        self.peers: dict[str, SearchSql] = peers if peers is not None else {}
        self.peers.setdefault(resource_type, self)

    def condition(self, clause: Clause) -> Condition:
        if clause.chain is not None:
            return self._chained(clause, clause.chain)
        assert clause.parameter is not None
        alternatives = [self._value(clause, value) for value in clause.values]
        combined = or_(*alternatives) if len(alternatives) > 1 else alternatives[0]
        if clause.modifier == "not":  # resources without any value match :not too
            return not_(func.coalesce(combined, false()))
        return combined

    def _chained(self, clause: Clause, inner: Clause) -> Condition:
        """``ref.param=x``: a reference to a live resource meeting ``inner``; ``_has``: a live
        resource meeting ``inner`` refers to this one."""
        source_type = clause.reverse[0] if clause.reverse is not None else clause.target_type
        assert source_type is not None
        other = self.peers[source_type].aliased()
        inner_condition = other.condition(inner)
        if isinstance(inner_condition, False_):
            # nothing can meet ``inner`` (``name=*`` searches no letters): and_() would fold
            # the sub-query's join conditions away with it, leaving a cross join
            return false()
        if clause.reverse is not None:
            reference = clause.reverse[1]
            # rows of their own: ``inner`` may search the same table (``_has:Patient:link:
            # organization=x``), and one alias in both would be correlated away
            other_refs = self.peers[source_type].aliased().children["references"]
            return exists().where(
                other_refs.c[other.owner] == other.main.c.id,
                other.reference_rows(other_refs, reference),
                other_refs.c.target_type == self.resource_type,
                other_refs.c.target_id == self.main.c.id,
                other.main.c.deleted_at.is_(None), inner_condition)
        refs = self.children["references"]
        targets = select(other.main.c.id).where(other.main.c.deleted_at.is_(None),
                                                inner_condition)
        return self._child("references", and_(
            self.reference_rows(refs, clause.name), refs.c.target_type == clause.target_type,
            refs.c.target_id.in_(targets)))

    def aliased(self) -> SearchSql:
        """The same compiler over fresh aliases of the tables (for sub-queries)."""
        return SearchSql(
            self.resource_type, self.main.alias(),
            {key: table.alias() for key, table in self.children.items()},
            owner=self.owner, cipher=self.cipher, phone_region=self.phone_region,
            peers=self.peers, parameters=self.parameters)

    def stored_as(self, name: str) -> ReferenceRows | None:
        """The backing of reference parameter ``name`` when other parameters' rows hold it
        (``ReferenceRows.stored_as``), else None (its rows carry its own name)."""
        parameter = self.parameters.get(name)
        backing = parameter.backing if parameter is not None else None
        return backing if isinstance(backing, ReferenceRows) and backing.stored_as else None

    def reference_rows(self, table: FromClause, name: str) -> Condition:
        """The rows of reference table ``table`` (this type's or an alias) that hold reference
        parameter ``name``."""
        backing = self.stored_as(name)
        if backing is not None:
            return and_(table.c.param.in_(backing.stored_as),
                        table.c.target_type.in_(backing.target_types))
        return table.c.param == name

    def _value(self, clause: Clause, value: SearchValue) -> Condition:
        assert clause.parameter is not None
        backing = clause.parameter.backing
        if isinstance(backing, PatientCompartment):
            assert isinstance(value, TokenValue) and value.code
            return self._compartment(backing, value.code)
        if isinstance(value, MissingValue):
            present = self._present(clause)
            return not_(present) if value.missing else present
        if isinstance(backing, Haystack):
            assert isinstance(value, StringValue)
            return self._string(backing, value, clause.modifier)
        if isinstance(backing, DateRange):
            assert isinstance(value, DateValue)
            return self._date(backing, value)
        if isinstance(backing, ReferenceRows):
            assert isinstance(value, ReferenceValue)
            return self._reference(clause.name, value)
        if isinstance(backing, CompositeRows):
            assert isinstance(value, CompositeValue)
            return self._token_reference(clause.name, value)
        return self._token(clause, value)

    # ------------------------------------------------------------------ string

    def _string(self, backing: Haystack, value: StringValue, modifier: str | None) -> Condition:
        """Starts-with on any field or word of a field, ``:contains``, ``:exact``; both sides
        normalised alike (``mappings.search_text``). A value with nothing searchable left
        (``name=-``) matches nothing."""
        column = self.main.c[backing.normalised]
        if backing.phonetic:  # every word of the value sounds like a word of a name
            codes = [needle(phonetic_code(word)) for word in normalise(value.text).split()]
            if not codes:
                return false()
            return and_(*(column.like(f"%{SEPARATOR}{escape_like(code)}{SEPARATOR}%",
                                      escape="\\") for code in codes))
        if modifier == "exact":
            exact = self.main.c[backing.exact]
            field = f"{SEPARATOR}{value.text}{SEPARATOR}"
            # LIKE narrows (and uses indexes); the case-sensitive position check decides
            return and_(exact.like(f"%{escape_like(field)}%", escape="\\"),
                        position_of(exact, field) > 0)
        text = needle(value.text)
        if not text:
            return false()
        text = escape_like(text)
        pattern = f"%{text}%" if modifier == "contains" else f"%{SEPARATOR}{text}%"
        return column.like(pattern, escape="\\")

    # ------------------------------------------------------------------- token

    def _token(self, clause: Clause, value: SearchValue) -> Condition:
        assert clause.parameter is not None
        backing = clause.parameter.backing
        if isinstance(backing, IdColumn):
            assert isinstance(value, TokenValue)
            return self.main.c.id == value.code if value.code else false()
        if isinstance(backing, CodeColumn):
            assert isinstance(value, TokenValue)
            return self._code_column(backing, value)
        if isinstance(backing, SetFlag):
            assert isinstance(value, TokenValue)
            if value.code not in ("true", "false"):
                return false()
            column = self.main.c[backing.column]
            return column.is_not(None) if value.code == "true" else column.is_(None)
        if isinstance(backing, StatusFlag):
            assert isinstance(value, TokenValue)
            flag = self.main.c[backing.column] == backing.value
            if value.code not in ("true", "false"):
                return false()
            return flag if value.code == "true" else not_(flag)
        if isinstance(backing, IdentifierRows):
            return self._child("identifiers", self._identifier(value))
        if isinstance(backing, TelecomRows):
            assert isinstance(value, TokenValue)
            return self._child("telecoms", self._telecom(backing, value))
        assert isinstance(backing, TokenRows)
        table = self.children["tokens"]
        if isinstance(value, TypedIdentifierValue):  # :of-type, see search_rows.identifier
            return self._child("tokens", and_(
                table.c.param == of_type_param(clause.name),
                table.c.system == of_type_system(value.type_system, value.type_code),
                table.c.code == value.value))
        if isinstance(value, StringValue):  # :text
            match: Condition = table.c.text_norm.like(
                f"{escape_like(fold(value.text))}%", escape="\\")
        else:
            assert isinstance(value, TokenValue)
            match = self._system_code(table.c.system, table.c.code, value)
        return self._child("tokens", and_(table.c.param == clause.name, match))

    def _code_column(self, backing: CodeColumn, value: TokenValue) -> Condition:
        column = self.main.c[backing.column]
        if value.system not in (None, "") and backing.system and value.system != backing.system:
            return false()
        if value.code is None:
            return column.is_not(None)
        if backing.boolean:
            if value.code not in ("true", "false"):
                return false()
            return column == (value.code == "true")
        return column == value.code

    @staticmethod
    def _system_code(system: Any, code: Any, value: TokenValue) -> Condition:
        conditions: list[Condition] = []
        if value.system == "":
            conditions.append(system.is_(None))
        elif value.system is not None:
            conditions.append(system == value.system)
        if value.code is not None:
            conditions.append(code == value.code)
        return and_(*conditions) if conditions else true()

    def _identifier(self, value: SearchValue) -> Condition:
        table = self.children["identifiers"]
        if isinstance(value, TypedIdentifierValue):  # any coding of the identifier's type
            # joined to the identifier row inside the one EXISTS: as an EXISTS of its own,
            # PostgreSQL took nearly every patient to match and walked all of them in id
            # order (6.7 s at 1M patients for one MRN; 0.5 ms joined)
            types = self.children["identifier_types"]
            return and_(self._identifier_value(table, value.value, None),
                        types.c[self.owner] == table.c[self.owner],
                        types.c.identifier_position == table.c.position,
                        types.c.system == value.type_system, types.c.code == value.type_code)
        assert isinstance(value, TokenValue)
        conditions: list[Condition] = []
        if value.system == "":
            conditions.append(table.c.system.is_(None))
        elif value.system is not None:
            conditions.append(table.c.system == value.system)
        if value.code is not None:
            conditions.append(self._identifier_value(table, value.code, value.system))
        return and_(*conditions) if conditions else true()

    def _identifier_value(self, table: FromClause, code: str, system: str | None) -> Condition:
        """Clear values compare as stored; SSNs (stored encrypted) through their keyed hash."""
        plain = table.c.value == code
        if system not in (None, systems.SSN):
            return plain
        digits = code.replace("-", "")
        if not (len(digits) == 9 and digits.isdigit()):
            return plain
        hashed = self.cipher.search_hash(f"{digits[:3]}-{digits[3:5]}-{digits[5:]}")
        ssn = and_(table.c.system == systems.SSN, table.c.value_hash == hashed)
        return ssn if system == systems.SSN else or_(plain, ssn)

    def _telecom(self, backing: TelecomRows, value: TokenValue) -> Condition:
        table = self.children["telecoms"]
        conditions: list[Condition] = []
        system = backing.system or (value.system or None)
        if system:
            conditions.append(table.c.system == system)
        if value.code is not None:
            conditions.append(self._telecom_value(table, system, value.code))
        return and_(*conditions) if conditions else true()

    def _telecom_value(self, table: FromClause, system: str | None, code: str) -> Condition:
        if system == "email":
            return func.lower(table.c.value) == code.lower()
        try:
            e164 = phone_to_e164(code, self.phone_region)
        except ContactPointError:
            e164 = None
        if e164 and system in ("phone", "sms", "fax"):
            # the same text parses to the same E.164 form: one indexed comparison suffices
            return table.c.value_e164 == e164
        # every arm an index range (lower(value), value_e164), so an OR of them is one too
        lowered = func.lower(table.c.value)
        matches: list[Condition] = [
            lowered == code.lower() if system is None  # holds wherever value == code does
            else and_(lowered == func.lower(literal(code, Text)), table.c.value == code)]
        if e164:
            matches.append(table.c.value_e164 == e164)
        return or_(*matches)

    # -------------------------------------------------------------- reference

    def _reference(self, name: str, value: ReferenceValue) -> Condition:
        table = self.children["references"]
        if value.foreign:
            return self._child("references", and_(self.reference_rows(table, name),
                                                  _same_literal(table, value.url)))
        by_id = table.c.target_id == value.target_id
        if value.target_type:
            by_id = and_(by_id, table.c.target_type == value.target_type)
        # a stored absolute URL of another server names the EHR's resource, not ours
        local = ~table.c.url.contains("://", autoescape=True)
        if value.base:
            local = or_(local, table.c.url.startswith(value.base + "/", autoescape=True))
        by_id = and_(by_id, local)
        return self._child("references", and_(self.reference_rows(table, name),
                                              or_(by_id, _same_literal(table, value.url))))

    def _token_reference(self, name: str, value: CompositeValue) -> Condition:
        """A token$reference composite: one row holds both components (see CompositeRows)."""
        table = self.children["tokens"]
        token, reference = value.parts
        conditions: list[Condition] = [table.c.param == name]
        if token.code is not None:
            conditions.append(table.c.system == token.code)
        if reference.target_type:
            conditions.append(table.c.code == f"{reference.target_type}/{reference.target_id}")
        else:
            conditions.append(table.c.code.like(f"%/{escape_like(reference.target_id)}",
                                                escape="\\"))
        return self._child("tokens", and_(*conditions))

    # ------------------------------------------------------------------- date

    def _date(self, backing: DateRange, value: DateValue) -> Condition:
        low, high = self.main.c[backing.low], self.main.c[backing.high]
        q_low: Any = value.low
        q_high: Any = value.high
        # date columns hold whole days: a query starting after midnight or ending before the
        # day's last instant covers only part of its first or last day
        starts_inside = ends_inside = False
        if backing.is_date:
            q_low, q_high = value.low.date(), value.high.date()
            starts_inside = value.low.time() != time.min
            ends_inside = value.high.time() != time.max
        equal = and_(low > q_low if starts_inside else low >= q_low,
                     high < q_high if ends_inside else high <= q_high)
        above: Condition = high >= q_high if ends_inside else high > q_high
        below: Condition = low <= q_low if starts_inside else low < q_low
        prefix = value.prefix
        if prefix == "eq":
            return equal
        if prefix == "ne":
            return not_(equal)
        if prefix == "gt":
            return above
        if prefix == "lt":
            return below
        if prefix == "ge":
            return or_(above, equal)
        if prefix == "le":
            return or_(below, equal)
        if prefix == "sa":
            return and_(low > q_high)
        if prefix == "eb":
            return and_(high < q_low)
        return self._approximately(low, high, value, backing.is_date)

    @staticmethod
    def _approximately(low: Any, high: Any, value: DateValue, is_date: bool) -> Condition:
        """``ap``: overlaps the value widened by 10% of its distance from now (at least a day)."""
        distance = abs(datetime.now(UTC) - value.low)
        margin = max(distance * 0.1, timedelta(days=1))
        start, end = value.low - margin, value.high + margin
        if is_date:
            return and_(low <= end.date(), high >= start.date())
        return and_(low <= end, high >= start)

    # ----------------------------------------------------------------- shared

    def _compartment(self, backing: PatientCompartment, patient_id: str) -> Condition:
        """The resource belongs to ``patient_id``'s compartment."""
        members: list[Condition] = []
        if backing.self_id:
            members.append(self.main.c.id == patient_id)
        if backing.params:
            refs = self.children["references"]
            members.append(self._child("references", and_(
                refs.c.param.in_(backing.params), refs.c.target_type == "Patient",
                refs.c.target_id == patient_id)))
        if backing.column:
            column = self.main.c[backing.column]
            members.append(or_(column == f"Patient/{patient_id}",
                               column.like(f"%/Patient/{escape_like(patient_id)}", escape="\\")))
        return or_(*members) if members else false()

    def _child(self, key: str, match: Condition) -> Condition:
        table = self.children[key]
        return exists().where(table.c[self.owner] == self.main.c.id, match)

    def _present(self, clause: Clause) -> Condition:
        assert clause.parameter is not None
        backing = clause.parameter.backing
        if isinstance(backing, Haystack):
            return self.main.c[backing.normalised].is_not(None)
        if isinstance(backing, DateRange):
            return self.main.c[backing.low].is_not(None)
        if isinstance(backing, CodeColumn | StatusFlag | SetFlag):
            return self.main.c[backing.column].is_not(None)
        if isinstance(backing, IdentifierRows):
            return self._child("identifiers", true())
        if isinstance(backing, TelecomRows):
            table = self.children["telecoms"]
            return self._child("telecoms", table.c.system == backing.system
                               if backing.system else true())
        if isinstance(backing, ReferenceRows):
            table = self.children["references"]
            return self._child("references", self.reference_rows(table, clause.name))
        return self._child("tokens", self.children["tokens"].c.param == clause.name)
