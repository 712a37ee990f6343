"""Message templates, pure: ``{name}`` placeholders parsed and substituted with plain strings.

Rules: a placeholder is ``{identifier}`` (``[A-Za-z_][A-Za-z0-9_]*``); ``{{`` and ``}}`` are a
literal ``{`` and ``}``. Anything else between braces (``{a.b}``, ``{a[0]}``, ``{a!r}``,
``{a:>9}``, ``{}``, ``{ x }``) and any unbalanced brace is a ``TemplateSyntaxError`` naming the
position and the offending text. Substitution copies the given string as is: no
``str.format``, no attribute or item access, no evaluation, and a value is never parsed again.

Errors::

    ValueError
    ├── TemplateSyntaxError   a body or subject that is not a valid template
    └── MissingVariables      a strict render without a value for every placeholder
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from terminology.messaging import CHANNELS

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
"""A template's name (the whole name must match), at most ``NAME_MAX_LENGTH`` characters."""
NAME_MAX_LENGTH = 100
VARIABLE_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A placeholder's variable name (the whole text between the braces must match)."""
CATEGORIES = ("appointment", "reminder", "confirmation", "cancellation", "alert", "marketing",
              "transactional", "system")
__all__ = ["CATEGORIES", "CHANNELS", "NAME_MAX_LENGTH", "NAME_PATTERN", "VARIABLE_PATTERN",
           "MissingVariables", "Rendered", "RenderedMessage", "TemplateSyntaxError",
           "placeholders", "render", "render_message", "render_message_strict", "render_strict",
           "render_text", "undeclared", "unused"]

_SHOWN = 40


class TemplateSyntaxError(ValueError):
    """The text is not a valid template; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, *, position: int, fragment: str) -> None:
        super().__init__(message)
        self.position = position
        self.fragment = fragment


class MissingVariables(ValueError):
    """A strict render lacks values for ``missing`` (sorted names)."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"no value for template variable(s): {', '.join(missing)}")
        self.missing = missing


@dataclass(frozen=True)
class _Placeholder:
    name: str


_Segment = str | _Placeholder


@dataclass(frozen=True)
class Rendered:
    """A rendered text; a placeholder without a value stays as ``{name}`` in ``text``."""

    text: str
    missing: list[str]
    unknown: list[str]


@dataclass(frozen=True)
class RenderedMessage:
    """Subject (None when the template has none) and body rendered with the same values."""

    subject: str | None
    text: str
    missing: list[str]
    unknown: list[str]


def _shown(fragment: str) -> str:
    return fragment if len(fragment) <= _SHOWN else fragment[:_SHOWN] + "..."


def _parse(text: str) -> list[_Segment]:
    """The text as literal runs and placeholders, or TemplateSyntaxError at the first fault."""
    segments: list[_Segment] = []
    literal: list[str] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char not in "{}":
            stop = _next_brace(text, index)
            literal.append(text[index:stop])
            index = stop
        elif text.startswith(char * 2, index):
            literal.append(char)
            index += 2
        elif char == "}":
            raise TemplateSyntaxError(
                f"unbalanced '}}' at position {index} (write '}}}}' for a literal brace)",
                position=index, fragment="}")
        else:
            index = _placeholder(text, index, segments, literal)
    if literal:
        segments.append("".join(literal))
    return segments


def _next_brace(text: str, start: int) -> int:
    positions = [found for found in (text.find("{", start), text.find("}", start)) if found >= 0]
    return min(positions) if positions else len(text)


def _placeholder(text: str, start: int, segments: list[_Segment], literal: list[str]) -> int:
    """Parses ``{name}`` opening at ``start``; returns the index after it."""
    close = text.find("}", start + 1)
    opening = text.find("{", start + 1)
    if close < 0 or 0 <= opening < close:
        fragment = text[start:close + 1] if close >= 0 else text[start:]
        raise TemplateSyntaxError(
            f"unbalanced '{{' at position {start}: '{_shown(fragment)}' is not closed by '}}' "
            "(write '{{' for a literal brace)", position=start, fragment=fragment)
    inner = text[start + 1:close]
    if not VARIABLE_PATTERN.fullmatch(inner):
        fragment = text[start:close + 1]
        raise TemplateSyntaxError(
            f"invalid placeholder '{_shown(fragment)}' at position {start}: only {{name}} with "
            "a name of letters, digits and '_' (not starting with a digit) is allowed",
            position=start, fragment=fragment)
    if literal:
        segments.append("".join(literal))
        literal.clear()
    segments.append(_Placeholder(inner))
    return close + 1


def placeholders(text: str) -> list[str]:
    """The variable names ``text`` uses, sorted and unique; TemplateSyntaxError if invalid."""
    return sorted({segment.name for segment in _parse(text) if isinstance(segment, _Placeholder)})


def render(text: str, values: Mapping[str, str]) -> Rendered:
    """``text`` with every placeholder that has a value replaced by it (verbatim)."""
    parts: list[str] = []
    used: set[str] = set()
    missing: set[str] = set()
    for segment in _parse(text):
        if isinstance(segment, str):
            parts.append(segment)
        elif segment.name in values:
            parts.append(_string(segment.name, values[segment.name]))
            used.add(segment.name)
        else:
            parts.append("{" + segment.name + "}")
            missing.add(segment.name)
    return Rendered("".join(parts), sorted(missing), sorted(set(values) - used))


def _string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"template variable '{name}' must be a string, not "
                        f"{type(value).__name__}")
    return value


def render_strict(text: str, values: Mapping[str, str]) -> str:
    """Like ``render`` but MissingVariables unless every placeholder has a value."""
    rendered = render(text, values)
    if rendered.missing:
        raise MissingVariables(rendered.missing)
    return rendered.text


def render_text(text: str, values: Mapping[str, str]) -> tuple[str, list[str]]:
    """(rendered text, missing names): the shape of the dispatcher's renderer."""
    rendered = render(text, values)
    return rendered.text, rendered.missing


def render_message(*, body: str, subject: str | None,
                   values: Mapping[str, str]) -> RenderedMessage:
    """Subject and body rendered together: missing in either, unknown to both."""
    rendered_body = render(body, values)
    rendered_subject = render(subject, values) if subject is not None else None
    missing = set(rendered_body.missing)
    unknown = set(rendered_body.unknown)
    if rendered_subject is not None:
        missing |= set(rendered_subject.missing)
        unknown &= set(rendered_subject.unknown)
    return RenderedMessage(rendered_subject.text if rendered_subject else None,
                           rendered_body.text, sorted(missing), sorted(unknown))


def render_message_strict(*, body: str, subject: str | None,
                          values: Mapping[str, str]) -> RenderedMessage:
    """Like ``render_message`` but MissingVariables unless every placeholder has a value."""
    rendered = render_message(body=body, subject=subject, values=values)
    if rendered.missing:
        raise MissingVariables(rendered.missing)
    return rendered


def undeclared(declared: Iterable[str], *texts: str | None) -> list[str]:
    """Placeholders of ``texts`` absent from ``declared`` (sorted); TemplateSyntaxError."""
    return sorted(_used(texts) - set(declared))


def unused(declared: Iterable[str], *texts: str | None) -> list[str]:
    """Declared names no placeholder of ``texts`` uses (sorted); TemplateSyntaxError."""
    return sorted(set(declared) - _used(texts))


def _used(texts: tuple[str | None, ...]) -> set[str]:
    return {name for text in texts if text is not None for name in placeholders(text)}
