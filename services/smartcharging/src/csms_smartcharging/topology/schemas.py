"""Request and response bodies of the topology routes."""

from datetime import datetime, time
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from csms_core.events import SiteLoad

Amps = Field(default=None, ge=0, le=100_000, description="A per phase")
Kilowatts = Field(default=None, ge=0, le=1_000_000, description="kW over all phases")
PhaseRotation = Literal["RST", "RTS", "SRT", "STR", "TRS", "TSR"]


class SiteIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Depot 1", "phases": 3, "limit_a": 100}]},
    )

    name: str = ""
    phases: Literal[1, 3] = 3
    voltage_v: float = Field(default=230.0, gt=0, le=1000)
    limit_a: float | None = Amps
    limit_kw: float | None = Kilowatts
    failsafe_a: float | None = Field(
        default=None, ge=0, description="station-wide TxDefaultProfile sent on connect"
    )


class SiteOut(SiteIn):
    site_id: str
    created_at: datetime


class GroupIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Feeder A", "limit_a": 63}]}
    )

    name: str = ""
    parent_group_id: str | None = Field(default=None, max_length=64)
    limit_a: float | None = Amps
    limit_kw: float | None = Kilowatts


class GroupOut(GroupIn):
    group_id: str
    site_id: str


class EvseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evse_id: int = Field(ge=1)
    max_a: float = Field(default=32.0, gt=0, le=1000)
    min_a: float = Field(default=6.0, ge=0, le=1000)
    phases: Literal[1, 3] = 3
    phase_rotation: PhaseRotation = Field(
        default="RST", description="OCPP PhaseRotation; a 1-phase EVSE loads the first letter"
    )
    priority: float = Field(default=1.0, gt=0, le=100)

    @model_validator(mode="after")
    def _min_below_max(self) -> Self:
        if self.min_a > self.max_a:
            raise ValueError("min_a must not exceed max_a")
        return self


class StationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "group_id": "feeder-a",
                    "max_a": 32,
                    "evses": [{"evse_id": 1, "max_a": 32, "phases": 1, "phase_rotation": "STR"}],
                }
            ]
        },
    )

    group_id: str | None = Field(default=None, max_length=64)
    max_a: float | None = Field(default=None, gt=0, le=1000)
    evses: list[EvseIn] = Field(default_factory=list)


class StationOut(StationIn):
    station_id: str
    site_id: str


class ScheduleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"days": [0, 1, 2, 3, 4], "start": "17:00", "end": "21:00", "limit_a": 40}]
        },
    )

    group_id: str | None = Field(default=None, max_length=64)
    days: list[int] = Field(default_factory=lambda: list(range(7)), description="0 = Monday")
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "UTC"
    limit_a: float | None = Amps
    limit_kw: float | None = Kilowatts

    @field_validator("days")
    @classmethod
    def _weekdays(cls, days: list[int]) -> list[int]:
        if not days or any(day not in range(7) for day in days):
            raise ValueError("days are 0 (Monday) to 6 (Sunday), at least one")
        return sorted(set(days))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone}") from exc
        return zone

    @model_validator(mode="after")
    def _a_limit(self) -> Self:
        if self.limit_a is None and self.limit_kw is None:
            raise ValueError("give limit_a or limit_kw")
        if time.fromisoformat(self.start) == time.fromisoformat(self.end):
            raise ValueError("start and end must differ")
        return self


class ScheduleOut(ScheduleIn):
    schedule_id: int
    site_id: str


class OverrideIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"limit_a": 40, "until": "2026-11-25T21:00:00Z"}]},
    )

    limit_a: float | None = Amps
    limit_kw: float | None = Kilowatts
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> Self:
        if (self.limit_a is None) == (self.limit_kw is None):
            raise ValueError("give exactly one of limit_a and limit_kw")
        return self


class OverrideOut(OverrideIn):
    site_id: str
    set_at: datetime


class LoadIn(SiteLoad):
    """The body of ``PUT .../load``: the same measurement as a ``site.load.measured`` event."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"load_a": [12.5, 8.0, 10.1]}]}
    )


class LoadOut(BaseModel):
    site_id: str
    load_a: list[float]
    measured_at: datetime
