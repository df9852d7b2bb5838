"""The OCPI 2.2.1 Tariff object (mod_tariffs.asciidoc §Tariff Object) as pydantic models.

Field constraints (patterns, enums, lengths, signs) are checked here; whether a
tariff makes sense as a whole (an element that can never apply, an unknown
currency, ...) is ``tariffs.validation``'s job.
"""

from datetime import date
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from csms_billing.ocpi import DateTime, DisplayText, NonNegative, Number, OcpiModel, Price


class TariffDimensionType(StrEnum):
    ENERGY = "ENERGY"  # per kWh; step_size in Wh
    FLAT = "FLAT"  # once; no step_size
    PARKING_TIME = "PARKING_TIME"  # per hour not charging; step_size in seconds
    TIME = "TIME"  # per hour charging; step_size in seconds


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"

    @property
    def weekday(self) -> int:
        """Monday 0 ... Sunday 6, as ``date.weekday()``."""
        return list(DayOfWeek).index(self)


class ReservationRestrictionType(StrEnum):
    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class TariffType(StrEnum):
    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


def _calendar_date(value: str) -> str:
    date.fromisoformat(value)  # the pattern lets 2023-02-31 through
    return value


TimeOfDay = Annotated[str, Field(pattern=r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$", examples=["17:00"])]
CalendarDate = Annotated[
    str,
    Field(pattern=r"^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"),
    AfterValidator(_calendar_date),
]
Percentage = Annotated[NonNegative, Field(le=100)]


class PriceComponent(OcpiModel):
    """How one dimension is priced: ``price`` per unit excl. VAT, billed in ``step_size``s."""

    type: TariffDimensionType
    price: NonNegative
    # Absent: no VAT applies. 0: VAT applies, at 0 %. Not the same (mod_tariffs PriceComponent).
    vat: Percentage | None = None
    step_size: int = Field(ge=0, le=86_400_000)

    @model_validator(mode="after")
    def _step_size_counts(self) -> Self:
        if self.type is not TariffDimensionType.FLAT and self.step_size < 1:
            raise ValueError(f"a {self.type} component needs a step_size of at least 1")
        return self


class TariffRestrictions(OcpiModel):
    """When an element applies; all set restrictions must hold (a logical AND)."""

    start_time: TimeOfDay | None = None
    end_time: TimeOfDay | None = None
    start_date: CalendarDate | None = None
    end_date: CalendarDate | None = None
    min_kwh: NonNegative | None = None
    max_kwh: NonNegative | None = None
    min_current: NonNegative | None = None
    max_current: NonNegative | None = None
    min_power: NonNegative | None = None
    max_power: NonNegative | None = None
    min_duration: int | None = Field(default=None, ge=0)
    max_duration: int | None = Field(default=None, ge=0)
    day_of_week: list[DayOfWeek] | None = Field(default=None, max_length=7)
    reservation: ReservationRestrictionType | None = None

    @property
    def unrestricted(self) -> bool:
        """No restriction set: the element applies whenever it is looked at."""
        return all(
            value is None or value == []
            for value in self.model_dump(exclude={"reservation"}).values()
        )


class TariffElement(OcpiModel):
    price_components: list[PriceComponent] = Field(min_length=1, max_length=16)
    restrictions: TariffRestrictions | None = None

    @property
    def reservation(self) -> ReservationRestrictionType | None:
        return self.restrictions.reservation if self.restrictions is not None else None

    @property
    def unrestricted(self) -> bool:
        return self.restrictions is None or self.restrictions.unrestricted


class EnergySourceCategory(StrEnum):
    NUCLEAR = "NUCLEAR"
    GENERAL_FOSSIL = "GENERAL_FOSSIL"
    COAL = "COAL"
    GAS = "GAS"
    GENERAL_GREEN = "GENERAL_GREEN"
    SOLAR = "SOLAR"
    WIND = "WIND"
    WATER = "WATER"


class EnvironmentalImpactCategory(StrEnum):
    NUCLEAR_WASTE = "NUCLEAR_WASTE"
    CARBON_DIOXIDE = "CARBON_DIOXIDE"


class EnergySource(OcpiModel):
    source: EnergySourceCategory
    percentage: Percentage


class EnvironmentalImpact(OcpiModel):
    category: EnvironmentalImpactCategory
    amount: NonNegative


class EnergyMix(OcpiModel):
    is_green_energy: bool
    energy_sources: list[EnergySource] | None = None
    environ_impact: list[EnvironmentalImpact] | None = None
    supplier_name: str | None = Field(default=None, max_length=64)
    energy_product_name: str | None = Field(default=None, max_length=64)


class Tariff(OcpiModel):
    """An OCPI 2.2.1 Tariff. ``country_code``, ``party_id`` and ``last_updated`` may be left
    out of a PUT: the CSMS fills them in (its own party, the time it stored the version)."""

    country_code: str | None = Field(default=None, min_length=2, max_length=2, examples=["NL"])
    party_id: str | None = Field(default=None, min_length=3, max_length=3, examples=["CSM"])
    id: str = Field(min_length=1, max_length=36, examples=["standard"])
    currency: str = Field(min_length=3, max_length=3, examples=["EUR"])
    type: TariffType | None = None
    tariff_alt_text: list[DisplayText] | None = Field(default=None, max_length=16)
    tariff_alt_url: str | None = Field(default=None, max_length=255)
    min_price: Price | None = None
    max_price: Price | None = None
    elements: list[TariffElement] = Field(min_length=1, max_length=64)
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime | None = None


__all__ = ["Number", "Price", "Tariff"]
