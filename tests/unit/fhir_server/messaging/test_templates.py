"""Template placeholders, pure: parsing, escapes, refused syntax, safe rendering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_server.messaging.templates import (
    CHANNELS,
    NAME_PATTERN,
    MissingVariables,
    TemplateSyntaxError,
    placeholders,
    render,
    render_message,
    render_message_strict,
    render_strict,
    render_text,
    undeclared,
    unused,
)

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
PLAIN = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)


def test_placeholders_sorted_and_unique() -> None:
    assert placeholders("Hi {name}, {date} at {time}; bye {name}") == ["date", "name", "time"]


def test_double_braces_are_literal() -> None:
    assert placeholders("{{name}} costs {{ 5 }}") == []
    assert render("{{name}} is {name}", {"name": "Ann"}).text == "{name} is Ann"


def test_escaped_braces_around_placeholder() -> None:
    assert render("{{{x}}}", {"x": "1"}).text == "{1}"


@pytest.mark.parametrize("body", ["{a.b}", "{a[0]}", "{a!r}", "{a:>9}", "{}", "{ x }",
                                  "{0}", "{9lives}", "{a-b}", "{__class__.__mro__}"])
def test_invalid_placeholder_refused_naming_it(body: str) -> None:
    with pytest.raises(TemplateSyntaxError) as error:
        placeholders("Hello " + body)
    assert error.value.position == 6
    assert body in str(error.value)
    assert "position 6" in str(error.value)


@pytest.mark.parametrize(("body", "position"), [("Hi {name", 3), ("Hi name}", 7),
                                                ("{", 0), ("}", 0), ("{a{b}}", 0),
                                                ("ok {{x}", 6)])
def test_unbalanced_brace_refused_with_position(body: str, position: int) -> None:
    with pytest.raises(TemplateSyntaxError) as error:
        placeholders(body)
    assert error.value.position == position
    assert "unbalanced" in str(error.value)


def test_render_reports_missing_and_unknown() -> None:
    rendered = render("Dear {name}, see you {date}", {"name": "Ann", "room": "4"})
    assert rendered.text == "Dear Ann, see you {date}"
    assert rendered.missing == ["date"]
    assert rendered.unknown == ["room"]


def test_render_strict_names_missing_variables() -> None:
    with pytest.raises(MissingVariables) as error:
        render_strict("{b} {a} {c}", {"c": "x"})
    assert error.value.missing == ["a", "b"]
    assert "a, b" in str(error.value)


def test_render_strict_ignores_unknown_values() -> None:
    assert render_strict("Hi {name}", {"name": "Ann", "extra": "x"}) == "Hi Ann"


def test_render_text_matches_dispatcher_shape() -> None:
    assert render_text("{a}{b}", {"a": "1"}) == ("1{b}", ["b"])


def test_value_is_copied_not_formatted_or_parsed() -> None:
    values = {"x": "{y} {0.__class__} {{", "y": "never"}
    rendered = render("<{x}>", values)
    assert rendered.text == "<{y} {0.__class__} {{>"
    assert rendered.unknown == ["y"]


def test_non_string_value_refused() -> None:
    with pytest.raises(TypeError, match="'n'"):
        render("{n}", {"n": 3})  # type: ignore[dict-item]


def test_render_message_combines_subject_and_body() -> None:
    rendered = render_message(body="Hi {name}", subject="About {topic}",
                              values={"name": "Ann", "extra": "1"})
    assert (rendered.subject, rendered.text) == ("About {topic}", "Hi Ann")
    assert rendered.missing == ["topic"]
    assert rendered.unknown == ["extra"]


def test_render_message_without_subject() -> None:
    rendered = render_message(body="Hi", subject=None, values={})
    assert rendered.subject is None
    assert rendered.text == "Hi"


def test_render_message_strict_names_missing_in_subject() -> None:
    with pytest.raises(MissingVariables, match="topic"):
        render_message_strict(body="Hi", subject="{topic}", values={})


def test_undeclared_and_unused() -> None:
    assert undeclared(["name"], "Hi {name} {date}", "{time}") == ["date", "time"]
    assert unused(["name", "spare"], "Hi {name}", None) == ["spare"]


def test_exports() -> None:
    assert "whatsapp" in CHANNELS
    assert NAME_PATTERN.fullmatch("appointment-reminder_2")
    assert not NAME_PATTERN.fullmatch("bad name")


@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_syntax_errors(text: str) -> None:
    try:
        names = placeholders(text)
        rendered = render(text, {})
    except TemplateSyntaxError as exc:
        assert 0 <= exc.position < len(text)
    else:
        assert rendered.missing == names


@given(PLAIN)
def test_text_without_braces_renders_to_itself(text: str) -> None:
    assert render(text, {}).text == text
    assert placeholders(text) == []


@given(st.lists(st.one_of(PLAIN, NAMES.map(lambda name: ("var", name))), max_size=8),
       st.dictionaries(NAMES, st.text(max_size=10)))
def test_all_values_leave_no_placeholder(parts: list[str | tuple[str, str]],
                                         extra: dict[str, str]) -> None:
    body = "".join(part if isinstance(part, str) else "{" + part[1] + "}" for part in parts)
    used = {part[1] for part in parts if isinstance(part, tuple)}
    values = {**extra, **{name: f"<{name}>" for name in used}}
    rendered = render(body, values)
    expected = "".join(part if isinstance(part, str) else f"<{part[1]}>" for part in parts)
    assert rendered.text == expected
    assert rendered.missing == []
    assert rendered.unknown == sorted(set(values) - used)


@given(st.text(max_size=30))
def test_rendering_never_evaluates_values(value: str) -> None:
    assert render("[{v}]", {"v": value}).text == f"[{value}]"
