"""Message templates in ``message_templates``: create, list, get, update, deactivate (never a
hard delete), and ``active_template`` for the dispatcher. Every save is checked first: name,
channel, category, the placeholders of body and subject, and the declared variables, which must
equal the placeholders (an undeclared placeholder or a declared name no placeholder uses is
refused: either is a typo the sender would only see at send time)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.errors import Conflict, InvalidRequest, Issue, NotFound
from fhir_server.messaging.templates import (
    CATEGORIES,
    CHANNELS,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    VARIABLE_PATTERN,
    TemplateSyntaxError,
    placeholders,
)
from storage.messaging_tables import message_templates
from storage.stored import now
from storage.unit_of_work import reading


@dataclass(frozen=True)
class TemplateDraft:
    """The editable fields of a template (what a create or a full update writes)."""

    name: str
    channel: str
    body: str
    category: str | None = None
    subject: str | None = None
    description: str | None = None
    variables: tuple[str, ...] | None = None
    """Declared variable names; None declares exactly the placeholders of body and subject."""
    active: bool = True


@dataclass(frozen=True)
class Template:
    """A stored template."""

    id: str
    name: str
    channel: str
    category: str | None
    subject: str | None
    body: str
    description: str | None
    variables: tuple[str, ...]
    active: bool
    created_at: datetime
    updated_at: datetime


def checked_variables(draft: TemplateDraft) -> tuple[str, ...]:
    """The draft's declared variables (sorted), or InvalidRequest naming every fault."""
    issues: list[Issue] = []

    def fault(field: str, message: str) -> None:
        issues.append(Issue(f"{field}: {message}", expression=(field,)))

    if len(draft.name) > NAME_MAX_LENGTH or not NAME_PATTERN.fullmatch(draft.name):
        fault("name", f"'{draft.name[:NAME_MAX_LENGTH]}' is not a template name (1 to "
                      f"{NAME_MAX_LENGTH} of A-Z, a-z, 0-9, '_' and '-')")
    if draft.channel not in CHANNELS:
        fault("channel", f"'{draft.channel[:40]}' is not one of {', '.join(CHANNELS)}")
    if draft.category is not None and draft.category not in CATEGORIES:
        fault("category", f"'{draft.category[:40]}' is not one of {', '.join(CATEGORIES)}")
    if not draft.body.strip():
        fault("body", "a template needs a non-empty body")
    if draft.channel == "email" and not (draft.subject or "").strip():
        fault("subject", "an email template needs a subject")
    used: set[str] = set()
    for field, text in (("subject", draft.subject), ("body", draft.body)):
        try:
            used.update(placeholders(text or ""))
        except TemplateSyntaxError as exc:
            fault(field, str(exc))
    declared = set(draft.variables if draft.variables is not None else used)
    for name in sorted(declared):
        if not VARIABLE_PATTERN.fullmatch(name):
            fault("variables", f"'{name}' is not a variable name")
    if not issues and declared != used:
        if missing := sorted(used - declared):
            fault("variables", f"placeholder(s) not declared: {', '.join(missing)}")
        if extra := sorted(declared - used):
            fault("variables", f"declared but used by no placeholder: {', '.join(extra)}")
    if issues:
        raise InvalidRequest(issues[0].diagnostics, issues=issues)
    return tuple(sorted(declared))


class TemplateStore:
    """``message_templates`` over the app's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, draft: TemplateDraft) -> Template:
        """A new active-or-not template; Conflict when the name is taken."""
        variables = checked_variables(draft)
        moment = now()
        values = {**_columns(draft, variables), "id": str(uuid.uuid4()),
                  "created_at": moment, "updated_at": moment}
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(message_templates).values(**values))
        except IntegrityError:
            raise _taken(draft.name) from None
        return await self.get(draft.name)

    async def list(self, *, channel: str | None = None, category: str | None = None,
                   active: bool | None = None) -> list[Template]:
        """Templates matching every filter given, ordered by name."""
        query: Select[Any] = select(message_templates).order_by(message_templates.c.name)
        if channel is not None:
            query = query.where(message_templates.c.channel == channel)
        if category is not None:
            query = query.where(message_templates.c.category == category)
        if active is not None:
            query = query.where(message_templates.c.active == active)
        async with reading(self._engine) as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_template(row) for row in rows]

    async def find(self, name: str) -> Template | None:
        """The template of this name, active or not, or None."""
        query = select(message_templates).where(message_templates.c.name == name)
        async with reading(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        return _template(row) if row is not None else None

    async def get(self, name: str) -> Template:
        """The template of this name, active or not; NotFound otherwise."""
        template = await self.find(name)
        if template is None:
            raise NotFound(f"No message template named '{name[:NAME_MAX_LENGTH]}'")
        return template

    async def active_template(self, name: str) -> Template | None:
        """The active template of this name, or None (what the dispatcher sends with)."""
        template = await self.find(name)
        return template if template is not None and template.active else None

    async def update(self, name: str, draft: TemplateDraft) -> Template:
        """Replaces every editable field; a new name must be free (Conflict otherwise)."""
        variables = checked_variables(draft)
        statement = (update(message_templates).where(message_templates.c.name == name)
                     .values(**_columns(draft, variables), updated_at=now()))
        try:
            async with self._engine.begin() as connection:
                result = await connection.execute(statement)
        except IntegrityError:
            raise _taken(draft.name) from None
        if result.rowcount == 0:
            raise NotFound(f"No message template named '{name[:NAME_MAX_LENGTH]}'")
        return await self.get(draft.name)

    async def deactivate(self, name: str) -> Template:
        """Marks the template inactive (kept, so past messages still name it)."""
        statement = (update(message_templates).where(message_templates.c.name == name)
                     .values(active=False, updated_at=now()))
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        if result.rowcount == 0:
            raise NotFound(f"No message template named '{name[:NAME_MAX_LENGTH]}'")
        return await self.get(name)


def _taken(name: str) -> Conflict:
    return Conflict(f"name: a message template named '{name}' already exists",
                    issues=[Issue(f"name: a message template named '{name}' already exists",
                                  expression=("name",))])


def _columns(draft: TemplateDraft, variables: tuple[str, ...]) -> dict[str, Any]:
    return {"name": draft.name, "channel": draft.channel, "category": draft.category,
            "subject": draft.subject, "body": draft.body, "description": draft.description,
            "variables": json.dumps(list(variables)), "active": draft.active}


def _template(row: Any) -> Template:
    return Template(
        id=row["id"], name=row["name"], channel=row["channel"], category=row["category"],
        subject=row["subject"], body=row["body"], description=row["description"],
        variables=tuple(json.loads(row["variables"])), active=bool(row["active"]),
        created_at=row["created_at"], updated_at=row["updated_at"])
