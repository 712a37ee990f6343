"""FHIR date, dateTime and instant values as the range of instants their precision implies.

``1984`` is all of 1984, ``1984-03`` all of March, ``1984-03-09T10:00:00+01:00`` one second.
Values without a time zone are taken as UTC. https://hl7.org/fhir/R4/search.html#date
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

_DATE_TIME = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class DateValueError(ValueError):
    """Not a FHIR date/dateTime/instant."""


def date_range(text: str) -> tuple[datetime, datetime]:
    """(first instant, last instant) covered by ``text``, both inclusive, in UTC."""
    match = _DATE_TIME.match(text)
    if match is None:
        raise DateValueError(f"'{text[:40]}' is not a FHIR date, dateTime or instant")
    parts = match.groupdict()
    try:
        year = int(parts["year"])
        if parts["month"] is None:
            return _utc(datetime(year, 1, 1)), _utc(datetime(year, 12, 31, 23, 59, 59, 999999))
        month = int(parts["month"])
        if parts["day"] is None:
            last_day = calendar.monthrange(year, month)[1]
            return (_utc(datetime(year, month, 1)),
                    _utc(datetime(year, month, last_day, 23, 59, 59, 999999)))
        day = int(parts["day"])
        if parts["hour"] is None:
            return (_utc(datetime(year, month, day)),
                    _utc(datetime(year, month, day, 23, 59, 59, 999999)))
        zone = parts["zone"] or "Z"
        offset = timedelta(0) if zone == "Z" else _offset(zone)
        start = datetime(year, month, day, int(parts["hour"]), int(parts["minute"]),
                         int(parts["second"] or 0))
        if parts["second"] is None:
            end = start + timedelta(minutes=1) - timedelta(microseconds=1)
        elif parts["fraction"]:
            fraction = parts["fraction"][1:]
            start = start.replace(microsecond=int(fraction[:6].ljust(6, "0")))
            end = start if len(fraction) >= 6 else start + timedelta(
                microseconds=10 ** (6 - len(fraction)) - 1)
        else:
            end = start + timedelta(seconds=1) - timedelta(microseconds=1)
        return (start - offset).replace(tzinfo=UTC), (end - offset).replace(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise DateValueError(f"'{text[:40]}' is not a valid date: {exc}") from None


def _offset(zone: str) -> timedelta:
    sign = -1 if zone[0] == "-" else 1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    return sign * timedelta(hours=hours, minutes=minutes)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def format_instant(moment: datetime) -> str:
    """FHIR instant with millisecond precision in UTC (``2026-01-02T03:04:05.678Z``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def instant_text(value: datetime | str) -> str:
    """``format_instant`` of a datetime or of its ISO text. PostgreSQL's JSON text of a UTC
    timestamp (``2026-01-02T03:04:05.678912+00:00``, trailing zeros of the fraction dropped)
    is cut to shape without building a datetime: a search page formats one per resource."""
    if isinstance(value, str):
        if len(value) == 25 and value[19] == "+" and value.endswith("+00:00"):
            return value[:19] + ".000Z"
        if 27 <= len(value) <= 32 and value[19] == "." and value.endswith("+00:00") \
                and value[20:-6].isascii() and value[20:-6].isdigit():
            return value[:20] + value[20:-6].ljust(3, "0")[:3] + "Z"
        value = datetime.fromisoformat(value)
    return format_instant(value)


def as_datetime(value: object) -> datetime:
    """A datetime column value, or its ISO text as a history snapshot keeps it."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
