"""What the cost engine answers: periods of a session, the lines billed in them, the totals."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from csms_billing.money import round_amount
from csms_billing.pricing.usage import ZERO
from csms_billing.tariffs.ocpi import PriceComponent, Tariff, TariffDimensionType

Dimension = TariffDimensionType
_HOUR = Decimal(3600)
_KILO = Decimal(1000)


class Phase(StrEnum):
    RESERVATION = "reservation"
    CHARGING = "charging"
    PARKING = "parking"


class CostType(StrEnum):
    """OCPP 2.1 TariffCostEnumType: what bounded the total."""

    NORMAL = "NormalCost"
    MIN = "MinCost"
    MAX = "MaxCost"


@dataclass(frozen=True, slots=True, order=True)
class ComponentRef:
    """A price component by position: ``tariff.elements[element].price_components[component]``."""

    element: int
    component: int

    def of(self, tariff: Tariff) -> PriceComponent:
        return tariff.elements[self.element].price_components[self.component]


@dataclass(frozen=True, slots=True)
class Amount:
    excl: Decimal = ZERO
    incl: Decimal = ZERO

    def __add__(self, other: "Amount") -> "Amount":
        return Amount(self.excl + other.excl, self.incl + other.incl)


@dataclass(frozen=True, slots=True)
class Line:
    """One component billed in one period; ``quantity`` in Wh, seconds or 1 (FLAT).

    ``hourly`` is the amount times 3600: exact (a price times seconds needs no division),
    so sums of lines are exact and divided once (see ``per_hour``).
    """

    dimension: Dimension
    ref: ComponentRef
    quantity: Decimal
    hourly: Amount = Amount()
    taxed: bool = False  # a VAT or another tax applies to this line

    @property
    def amount(self) -> Amount:
        return per_hour(self.hourly)

    @property
    def volume(self) -> Decimal:
        """In OCPI units: kWh, hours, or 1."""
        return self.quantity * self.scale / _HOUR

    @property
    def scale(self) -> Decimal:
        """Units of ``quantity`` per OCPI unit, times 3600: exact for every dimension."""
        if self.dimension is Dimension.ENERGY:
            return _HOUR / _KILO
        return _HOUR if self.dimension is Dimension.FLAT else Decimal(1)


def per_hour(hourly: Amount) -> Amount:
    return Amount(hourly.excl / _HOUR, hourly.incl / _HOUR)


@dataclass(frozen=True)
class Period:
    """Consecutive intervals of one phase under the same price components (a CDR ChargingPeriod)."""

    start: datetime
    phase: Phase
    seconds: Decimal
    energy_wh: Decimal
    components: tuple[tuple[Dimension, ComponentRef], ...]
    powers_w: tuple[Decimal, ...] = ()
    currents_a: tuple[Decimal, ...] = ()
    lines: tuple[Line, ...] = ()
    # The tariff whose components these are (a session's tariff may change): its id, and
    # which of the session's tariff parts it is (engine.TariffPart).
    tariff_id: str | None = None
    part: int = 0

    @property
    def amount(self) -> Amount:
        return per_hour(sum((line.hourly for line in self.lines), Amount()))


@dataclass(frozen=True)
class Cost:
    """The priced session: every period with its lines, the sub-totals and the total."""

    currency: str
    periods: tuple[Period, ...]
    fixed: Amount
    energy: Amount
    time: Amount
    parking: Amount
    reservation: Amount
    total: Amount
    type_of_cost: CostType
    # Whether any VAT or tax applies: without one there is no "including VAT" figure.
    taxed: bool
    energy_wh: Decimal
    time_s: Decimal
    parking_s: Decimal
    reservation_s: Decimal

    @property
    def charging_s(self) -> Decimal:
        return self.time_s - self.parking_s

    @property
    def wire_total(self) -> Decimal:
        """What OCPP's ``totalCost`` carries: including taxes where taxes apply, rounded."""
        excl, incl = self.rounded(self.total)
        return excl if incl is None else incl

    def rounded(self, amount: Amount) -> tuple[Decimal, Decimal | None]:
        """(excl., incl. VAT or None where no tax applies), as a driver pays them."""
        excl = round_amount(amount.excl, self.currency)
        return excl, round_amount(amount.incl, self.currency) if self.taxed else None


def category(period: Period, line: Line) -> str:
    if period.phase is Phase.RESERVATION:
        return "reservation"
    return {
        Dimension.FLAT: "fixed",
        Dimension.ENERGY: "energy",
        Dimension.TIME: "time",
        Dimension.PARKING_TIME: "parking",
    }[line.dimension]
