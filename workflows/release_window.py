"""Deploy windows of release pipelines: allowed weekly calendars minus blackout dates,
in one IANA time zone (``zoneinfo``), like Spinnaker's execution windows.

:func:`next_open` answers "when may this release go ahead?" for an instant: the
instant itself while a window is open, the start of the next allowed period, or
``None`` when none opens within :data:`HORIZON_DAYS` (a window that never opens is a
pipeline error). Pure: no I/O (time-zone rules come from the system's tz database,
or the ``tzdata`` wheel), deterministic for a given ``now``."""

from __future__ import annotations

import datetime as dt
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 400
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class Allowed(_M):
    """Allowed on these week days from ``start`` to ``end`` (local time; ``end`` before
    ``start`` crosses midnight; ``24:00`` is the end of the day)."""

    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1)
    start: str = Field("00:00", pattern=_HHMM)
    end: str = Field("24:00", pattern=_HHMM)

    @model_validator(mode="after")
    def _not_empty(self) -> Allowed:
        if _minutes(self.start) == _minutes(self.end):
            raise ValueError(f"allowed window {self.start}-{self.end} is empty (never opens)")
        return self

    def periods(self, day: dt.date, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """The allowed periods (aware datetimes) that start on ``day``."""
        if DAYS[day.weekday()] not in self.days:
            return []
        s, e = _minutes(self.start), _minutes(self.end)
        start = datetime.combine(day, time(0), tz) + timedelta(minutes=s)
        end = datetime.combine(day, time(0), tz) + timedelta(minutes=e if e > s else e + 1440)
        return [(start, end)]


class Blackout(_M):
    """No deploys on ``date`` (or from ``date`` through ``until``, inclusive), local time."""

    date: dt.date
    until: dt.date | None = None
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Blackout:
        if self.until is not None and self.until < self.date:
            raise ValueError(f"blackout until {self.until} is before its date {self.date}")
        return self

    def covers(self, day: dt.date) -> bool:
        return self.date <= day <= (self.until or self.date)


class DeployWindow(_M):
    """When a stage may start: ``allowed`` calendars minus ``blackout`` days."""

    timezone: str = Field("UTC", description="IANA time zone, e.g. Europe/Berlin")
    allowed: list[Allowed] = Field(default_factory=lambda: [Allowed()], min_length=1)
    blackout: list[Blackout] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r} (an IANA name, e.g. Europe/Berlin)"
            ) from None
        return v

    def describe(self) -> str:
        parts = [f"{','.join(a.days)} {a.start}-{a.end}" for a in self.allowed]
        text = "; ".join(parts) + f" {self.timezone}"
        if self.blackout:
            text += ", not " + ", ".join(
                str(b.date) + (f"..{b.until}" if b.until else "") for b in self.blackout
            )
        return text

    def next_open(self, now: datetime) -> datetime | None:
        """``now`` if a window is open at ``now``, else the next opening, else None."""
        tz = ZoneInfo(self.timezone)
        local = now.astimezone(tz)
        first = local.date() - timedelta(days=1)  # a period from yesterday may cross midnight
        best: datetime | None = None
        for offset in range(HORIZON_DAYS + 1):
            day = first + timedelta(days=offset)
            for allowed in self.allowed:
                for start, end in allowed.periods(day, tz):
                    if end <= now:
                        continue
                    opening = self._first_clear(max(start, now), end, tz)
                    if opening is not None and (best is None or opening < best):
                        best = opening
            if best is not None and best.astimezone(tz).date() < day:
                return best
        return best

    def _first_clear(self, start: datetime, end: datetime, tz: ZoneInfo) -> datetime | None:
        """The first instant in [start, end) not on a blackout day."""
        at = start
        while at < end:
            day = at.astimezone(tz).date()
            if not any(b.covers(day) for b in self.blackout):
                return at
            at = datetime.combine(day + timedelta(days=1), time(0), tz)
        return None

    def closes_at(self, opening: datetime) -> datetime | None:
        """When the period open at ``opening`` ends (for the status line)."""
        tz = ZoneInfo(self.timezone)
        day = opening.astimezone(tz).date()
        for d in (day - timedelta(days=1), day):
            for allowed in self.allowed:
                for start, end in allowed.periods(d, tz):
                    if start <= opening < end:
                        return end
        return None
