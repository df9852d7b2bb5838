"""``csms.charging-limits`` (smart charging's limits) and ``csms.site-load`` (integrators')."""

from typing import Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from csms_core.envelope import Event
from csms_core.events.data import EventData, SparseEventData


class ChargingLimitChangedData(SparseEventData):
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"session_id"})

    site_id: str
    station_id: str
    evse_id: int = Field(ge=0)
    session_id: str | None = None
    limit_a: float = Field(ge=0, description="A per phase.")
    limit_w: float = Field(ge=0)
    phases: int = Field(ge=1, le=3)
    reason: str = Field(examples=["session_started"])
    valid_from: AwareDatetime
    outcome: str = Field(examples=["Accepted"], description="How the station took it.")


class ChargingLimitChanged(Event[ChargingLimitChangedData]):
    type: Literal["charging.limit_changed"] = "charging.limit_changed"


class SiteLoad(BaseModel):
    """A site's measured non-EV load: in A (one value, or one per phase) or in kW."""

    load_a: float | list[float] | None = Field(
        default=None, description="A on every phase, or [L1, L2, L3]"
    )
    load_kw: float | None = Field(default=None, ge=0, description="spread evenly over the phases")
    measured_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_load(self) -> Self:
        if (self.load_a is None) == (self.load_kw is None):
            raise ValueError("give exactly one of load_a and load_kw")
        values = self.load_a if isinstance(self.load_a, list) else [self.load_a or 0.0]
        if isinstance(self.load_a, list) and len(self.load_a) != 3:
            raise ValueError("load_a as a list has one value per phase: [L1, L2, L3]")
        if any(value < 0 for value in values):
            raise ValueError("a load is not negative")
        return self

    def per_phase_a(self, voltage_v: float, phases: int) -> list[float]:
        """The load in A on each of the site's three phases."""
        if self.load_kw is not None:
            per_phase_a = self.load_kw * 1000.0 / (voltage_v * phases)
            return [per_phase_a] * 3 if phases == 3 else [per_phase_a, 0.0, 0.0]
        if isinstance(self.load_a, list):
            return list(self.load_a)
        return [self.load_a or 0.0] * 3


class SiteLoadMeasuredData(SiteLoad, EventData):
    site_id: str = Field(min_length=1, description="The site (PUT /sites/{site_id}).")

    @model_validator(mode="before")
    @classmethod
    def _names_its_site(cls, value: Any) -> Any:
        if isinstance(value, dict) and not isinstance(value.get("site_id"), str):
            raise ValueError("site.load.measured needs a site_id (a string)")  # noqa: TRY004
        return value


class SiteLoadMeasured(Event[SiteLoadMeasuredData]):
    """Published by an integrator (an EMS, a meter gateway); the key is the meter's id."""

    type: Literal["site.load.measured"] = "site.load.measured"
