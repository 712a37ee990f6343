"""``instant_text``: the cut-to-shape path for PostgreSQL's JSON timestamps gives exactly what
parsing and ``format_instant`` give, for every fraction PostgreSQL writes and every other
offset (which takes the parsing path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from mappings.fhir_dates import format_instant, instant_text


def postgres_json_text(moment: datetime) -> str:
    """What PostgreSQL's ``json_build_array`` writes for a timestamptz: ISO 8601 with the
    session's offset, the fraction's trailing zeros dropped (none when it is zero)."""
    text = moment.isoformat()
    if moment.microsecond:
        head, offset = text[:26], text[26:]
        text = head.rstrip("0") + offset
    return text


moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))
offsets = st.sampled_from([timedelta(0), timedelta(hours=2), timedelta(hours=-5, minutes=-30)])


@given(moments, offsets)
def test_text_gives_what_the_datetime_gives(naive: datetime, offset: timedelta) -> None:
    moment = naive.replace(tzinfo=timezone(offset))
    assert instant_text(postgres_json_text(moment)) == format_instant(moment)


def test_examples_of_each_fraction_length() -> None:
    assert instant_text("2026-01-02T03:04:05+00:00") == "2026-01-02T03:04:05.000Z"
    assert instant_text("2026-01-02T03:04:05.1+00:00") == "2026-01-02T03:04:05.100Z"
    assert instant_text("2026-01-02T03:04:05.12+00:00") == "2026-01-02T03:04:05.120Z"
    assert instant_text("2026-01-02T03:04:05.678912+00:00") == "2026-01-02T03:04:05.678Z"
    assert instant_text("2026-01-02T03:04:05.678912+01:00") == "2026-01-02T02:04:05.678Z"


def test_a_datetime_is_formatted_as_format_instant_does() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678912, tzinfo=UTC)
    assert instant_text(moment) == format_instant(moment) == "2026-01-02T03:04:05.678Z"
