"""The cost engine against a table of sessions whose cost was computed by hand.

Each row names what it proves; the arithmetic is in the comment next to it.
Rows marked "OCPI ex." are the worked examples of OCPI 2.2.1 mod_tariffs (with
the 2.2.1 errata: the step_size example #3 is 0.73). Amounts are rounded half
up to cents only at the end, as a driver pays them.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from csms_billing.pricing.cost import Cost, CostType
from csms_billing.pricing.engine import TariffPart, price, price_expired_reservation, price_parts
from csms_billing.pricing.taxes import TaxRate
from csms_billing.pricing.usage import RegisterReading, Usage
from csms_billing.tariffs.ocpi import Tariff, TariffDimensionType
from tests.billing_kit import charged, component, element, parked, session, tariff, totals

UTC_ZONE = ZoneInfo("UTC")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MONDAY_0930 = datetime(2024, 1, 1, 9, 30, tzinfo=UTC)  # 2024-01-01 was a Monday
NOON = datetime(2024, 1, 2, 12, 0, tzinfo=UTC)

# OCPI ex. 10: start fee 0.50 (20 %), 0.25/kWh (10 %) per Wh, parking 2.00/h (20 %) per 15 min.
START_ENERGY_PARKING = tariff(
    element(
        component("FLAT", "0.50", vat="20"),
        component("ENERGY", "0.25", vat="10"),
        component("PARKING_TIME", "2.00", vat="20", step=900),
    )
)
# OCPI ex. 14 (step_size): 1.20/h charging per 30 min until 17:00, 2.40/h per 15 min after;
# parking 1.00/h per 15 min until 20:00, free after.
STEP_SIZES = tariff(
    element(
        component("TIME", "1.20", step=1800),
        component("PARKING_TIME", "1.00", step=900),
        start_time="00:00",
        end_time="17:00",
    ),
    element(
        component("TIME", "2.40", step=900),
        component("PARKING_TIME", "1.00", step=900),
        start_time="17:00",
        end_time="20:00",
    ),
    element(component("TIME", "2.40", step=900), start_time="20:00", end_time="00:00"),
)
# OCPI ex. 4 (complex).
COMPLEX = tariff(
    element(component("FLAT", "2.50", vat="15")),
    element(component("TIME", "1.00", vat="20", step=900), max_current="32"),
    element(
        component("TIME", "2.00", vat="20", step=600),
        min_current="32",
        day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
    ),
    element(
        component("TIME", "1.25", vat="20", step=600),
        min_current="32",
        day_of_week=["SATURDAY", "SUNDAY"],
    ),
    element(
        component("PARKING_TIME", "5.00", vat="10", step=300),
        start_time="09:00",
        end_time="18:00",
        day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
    ),
    element(
        component("PARKING_TIME", "6.00", vat="10", step=300),
        start_time="10:00",
        end_time="17:00",
        day_of_week=["SATURDAY"],
    ),
)
SESSION_FEE = element(component("FLAT", "0.50", vat="20"), component("ENERGY", "0.25", vat="10"))


def at(hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    tariff: Tariff
    usage: Usage
    excl: str
    incl: str | None
    zone: ZoneInfo = UTC_ZONE
    taxes: tuple[TaxRate, ...] = field(default=())
    type_of_cost: CostType = CostType.NORMAL


TABLE: dict[str, Row] = {
    # OCPI ex. 8: 20 kWh x 0.25 = 5.00; +10 % = 5.50.
    "energy_only": Row(
        tariff(element(component("ENERGY", "0.25", vat="10"))),
        session(NOON, charged(20, 120)),
        "5.00",
        "5.50",
    ),
    # OCPI ex. 9: 0.50 + 5.00 = 5.50; 0.60 + 5.50 = 6.10.
    "start_fee_plus_energy": Row(
        tariff(SESSION_FEE), session(NOON, charged(20, 120)), "5.50", "6.10"
    ),
    # OCPI ex. 12: 1 kWh = 0.25 < min_price 0.50 (0.55 incl.).
    "min_price_applies": Row(
        tariff(
            element(component("ENERGY", "0.25", vat="10")),
            min_price={"excl_vat": "0.50", "incl_vat": "0.55"},
        ),
        session(NOON, charged(1, 10)),
        "0.50",
        "0.55",
        type_of_cost=CostType.MIN,
    ),
    # OCPI ex. 10: a parking fee after charging stops: 0.50 + 20 x 0.25 + 45 min (40 rounded up
    # to 15-minute steps) x 2.00/h = 0.50 + 5.00 + 1.50 = 7.00; 0.60 + 5.50 + 1.80 = 7.90.
    "parking_fee_after_charging_stops": Row(
        START_ENERGY_PARKING, session(NOON, charged(20, 120), parked(40)), "7.00", "7.90"
    ),
    # OCPI ex. 6: 0.50 + 50 x 0.25 = 13.00 (14.35 incl.) capped at 10.00 / 11.00.
    "max_price_caps": Row(
        tariff(SESSION_FEE, max_price={"excl_vat": "10", "incl_vat": "11"}),
        session(NOON, charged(50, 300)),
        "10.00",
        "11.00",
        type_of_cost=CostType.MAX,
    ),
    # OCPI ex. 6, under the cap: 0.50 + 30 x 0.25 = 8.00; 0.60 + 8.25 = 8.85.
    "max_price_not_reached": Row(
        tariff(SESSION_FEE, max_price={"excl_vat": "10", "incl_vat": "11"}),
        session(NOON, charged(30, 180)),
        "8.00",
        "8.85",
    ),
    # OCPI ex. 1: TIME only, 2.00/h: 2.5 h charging = 5.00 (5.50); parking is not TIME: free.
    "time_only_parking_free": Row(
        tariff(element(component("TIME", "2.00", vat="10", step=60))),
        session(NOON, charged(10, 150), parked(30)),
        "5.00",
        "5.50",
    ),
    # OCPI ex. 13: 150 min x 3.00/h = 7.50 (8.25) + 42 -> 45 min x 5.00/h = 3.75 (4.50).
    "charging_then_parking_step_on_parking_only": Row(
        tariff(
            element(
                component("TIME", "3.00", vat="10", step=60),
                component("PARKING_TIME", "5.00", vat="20", step=300),
            )
        ),
        session(NOON, charged(10, 150), parked(42)),
        "11.25",
        "12.75",
    ),
    # OCPI ex. 4, Monday 09:30, 16 A for 165 min, then parked 42 min:
    # 2.50 (2.875) + 165 min x 1.00/h = 2.75 (3.30) + 45 min x 5.00/h = 3.75 (4.125).
    "complex_monday": Row(
        COMPLEX,
        session(MONDAY_0930, charged(11, 165, current_a=16), parked(42)),
        "9.00",
        "10.30",
    ),
    # OCPI ex. 14 #1: 16:55 charge 10 min, park 2 min: 5 min x 1.20/h + 5 min x 2.40/h
    # + parking 2 -> 15 min x 1.00/h = 0.10 + 0.20 + 0.25.
    "step_size_switching_element_1": Row(
        STEP_SIZES, session(at(16, 55), charged(3, 10), parked(2)), "0.55", None
    ),
    # OCPI ex. 14 #2: 16:35 charge 35 min: rounded to 45 (the last step, 15 min):
    # 25 min x 1.20/h = 0.50 before 17:00, 20 min x 2.40/h = 0.80 after.
    "step_size_switching_element_2": Row(
        STEP_SIZES, session(at(16, 35), charged(10, 35)), "1.30", None
    ),
    # OCPI ex. 14 #3 (errata): 19:40 charge 12 min = 0.48; park 20 min, 8 of them before the
    # free evening: 8 -> 15 min x 1.00/h = 0.25; total 0.73.
    "step_size_into_free_parking": Row(
        STEP_SIZES, session(at(19, 40), charged(4, 12), parked(20)), "0.73", None
    ),
    # mod_cdrs step_size: 0.20/kWh until 17:00, 0.27 after, both per 500 Wh; 4.3 + 1.1 kWh =
    # 5.4 -> 5.5 kWh: 4.3 x 0.20 + 1.2 x 0.27 = 0.86 + 0.324 = 1.184.
    "energy_step_size_once_per_session": Row(
        tariff(
            element(component("ENERGY", "0.20", step=500), end_time="17:00"),
            element(component("ENERGY", "0.27", step=500)),
        ),
        session(at(16, 0), charged("4.3", 60), charged("1.1", 30)),
        "1.18",
        None,
    ),
    # Midnight into the weekend (Europe/Amsterdam, UTC+1 in January): Friday 23:00 to Saturday
    # 01:00 local, 10 kWh evenly: 5 x 0.40 + 5 x 0.25 = 3.25; +19 % = 3.8675.
    "crossing_midnight_into_weekend_local_time": Row(
        tariff(
            element(component("ENERGY", "0.25", vat="19"), day_of_week=["SATURDAY", "SUNDAY"]),
            element(component("ENERGY", "0.40", vat="19")),
        ),
        session(datetime(2024, 1, 5, 22, 0, tzinfo=UTC), charged(10, 120)),
        "3.25",
        "3.87",
        zone=AMSTERDAM,
    ),
    # A night window that wraps midnight, 22:00-06:00 local at 0.20, else 0.35: 21:00-23:00
    # local, 4 kWh evenly: 2 x 0.35 + 2 x 0.20 = 1.10.
    "night_window_wrapping_midnight": Row(
        tariff(
            element(component("ENERGY", "0.20"), start_time="22:00", end_time="06:00"),
            element(component("ENERGY", "0.35")),
        ),
        session(datetime(2024, 1, 2, 20, 0, tzinfo=UTC), charged(4, 120)),
        "1.10",
        None,
        zone=AMSTERDAM,
    ),
    # A meter reset mid-session: 1000 -> 5000 Wh, reset to 0, -> 3000 Wh: 4000 + 3000 Wh,
    # 7 kWh x 0.30 = 2.10 (the energy around the reset was not measured).
    "meter_reset_mid_session": Row(
        tariff(element(component("ENERGY", "0.30"))),
        Usage(
            NOON,
            at(13),
            readings=[
                RegisterReading(NOON, Decimal(1000)),
                RegisterReading(at(12, 30), Decimal(5000)),
                RegisterReading(at(12, 31), Decimal(0)),
                RegisterReading(at(13), Decimal(3000)),
            ],
        ),
        "2.10",
        None,
    ),
    # The same readings duplicated and out of order (an offline replay): the same 2.10.
    "duplicated_out_of_order_readings": Row(
        tariff(element(component("ENERGY", "0.30"))),
        Usage(
            NOON,
            at(13),
            readings=[
                RegisterReading(at(13), Decimal(3000)),
                RegisterReading(at(12, 30), Decimal(5000)),
                RegisterReading(NOON, Decimal(1000)),
                RegisterReading(at(12, 31), Decimal(0)),
                RegisterReading(at(12, 30), Decimal(5000)),
                RegisterReading(at(13), Decimal(3000)),
            ],
        ),
        "2.10",
        None,
    ),
    # VAT stacking: 10 kWh x 0.30 = 3.00 with VAT 10 % and State 5 % (stack 0), City 2 % on
    # energy (stack 1): 3.00 x 1.15 x 1.02 = 3.519; start fee 1.00 x (1 + 0.20 + 0.05) = 1.25;
    # total 4.00 excl., 4.769 incl.
    "vat_stacking": Row(
        tariff(element(component("FLAT", "1.00", vat="20"), component("ENERGY", "0.30", vat="10"))),
        session(NOON, charged(10, 60)),
        "4.00",
        "4.77",
        taxes=(
            TaxRate(type="State", tax=Decimal(5), stack=0),
            TaxRate(type="City", tax=Decimal(2), stack=1, dimensions=[TariffDimensionType.ENERGY]),
        ),
    ),
    # OCPI ex. 5: free of charge (FLAT 0.00, no VAT): 0.00 is a cost, and it is sent.
    "free_session": Row(
        tariff(element(component("FLAT", "0.00"))), session(NOON, charged(12, 60)), "0.00", None
    ),
    # VAT absent is not 0 %: 3.00 with no VAT at all (no incl. figure) ...
    "vat_absent": Row(
        tariff(element(component("ENERGY", "0.30"))), session(NOON, charged(10, 60)), "3.00", None
    ),
    # ... and 3.00 with VAT at 0 % (an incl. figure, equal).
    "vat_zero_percent": Row(
        tariff(element(component("ENERGY", "0.30", vat="0"))),
        session(NOON, charged(10, 60)),
        "3.00",
        "3.00",
    ),
    # OCPI max_power example: 1 kWh at 6 kW (0.20), 40 kWh at 48 kW (0.50), 0.5 kWh at 4 kW
    # (0.20): 0.20 + 20.00 + 0.10 = 20.30; +20 % = 24.36.
    "power_restrictions": Row(
        tariff(
            element(component("ENERGY", "0.20", vat="20"), max_power="16"),
            element(component("ENERGY", "0.35", vat="20"), max_power="32"),
            element(component("ENERGY", "0.50", vat="20")),
        ),
        session(NOON, charged(1, 10), charged(40, 50), charged("0.5", "7.5")),
        "20.30",
        "24.36",
    ),
    # OCPI max_duration example: 5 kWh free in the first 30 min, 1.2 kWh in the next 10 at 0.25.
    "duration_restrictions": Row(
        tariff(
            element(component("ENERGY", "0.00", vat="20"), max_duration=1800),
            element(component("ENERGY", "0.25", vat="20"), max_duration=3600),
            element(component("ENERGY", "0.40", vat="20")),
        ),
        session(NOON, charged(5, 30), charged("1.2", 10)),
        "0.30",
        "0.36",
    ),
    # An energy threshold inside one reading interval: 15 kWh in one go, the first 10 at 0.40,
    # the rest at 0.30: 4.00 + 1.50 = 5.50.
    "energy_threshold_between_readings": Row(
        tariff(
            element(component("ENERGY", "0.40"), max_kwh="10"),
            element(component("ENERGY", "0.30")),
        ),
        session(NOON, charged(15, 90)),
        "5.50",
        None,
    ),
    # OCPI ex. 15: reservation 5.00/h per minute (20 %), 15 min before the start; 0.50 + 20 kWh:
    # 1.25 (1.50) + 0.50 (0.60) + 5.00 (5.50) = 6.75 (7.60).
    "reservation_time": Row(
        tariff(
            element(component("TIME", "5.00", vat="20", step=60), reservation="RESERVATION"),
            SESSION_FEE,
        ),
        session(NOON, charged(20, 120), reserved_minutes=15),
        "6.75",
        "7.60",
    ),
    # OCPI ex. 16: reservation fee 2.00 + 13 -> 15 min x 5.00/h, then 0.50 + 20 kWh:
    # 2.00 + 1.25 + 0.50 + 5.00 = 8.75; 2.40 + 1.50 + 0.60 + 5.50 = 10.00.
    "reservation_fee_and_time": Row(
        tariff(
            element(
                component("FLAT", "2.00", vat="20"),
                component("TIME", "5.00", vat="20", step=300),
                reservation="RESERVATION",
            ),
            SESSION_FEE,
        ),
        session(NOON, charged(20, 120), reserved_minutes=13),
        "8.75",
        "10.00",
    ),
    # A session of no time still pays its start fee.
    "zero_length_session_pays_flat": Row(
        tariff(element(component("FLAT", "1.00"), component("ENERGY", "0.30"))),
        Usage(NOON, NOON, readings=[RegisterReading(NOON, Decimal(500))]),
        "1.00",
        None,
    ),
}


@pytest.mark.parametrize("name", list(TABLE))
def test_billing_cost_table(name: str) -> None:
    row = TABLE[name]
    cost = price(row.tariff, row.usage, row.zone, row.taxes)
    incl = None if row.incl is None else Decimal(row.incl)
    assert totals(cost) == (Decimal(row.excl), incl)
    assert cost.type_of_cost is row.type_of_cost


# OCPI ex. 17 and 18: reservations with an expiry price.
EXPIRE_FEE = tariff(
    element(component("FLAT", "4.00", vat="20"), reservation="RESERVATION_EXPIRES"),
    element(component("TIME", "2.00", vat="20", step=600), reservation="RESERVATION"),
    SESSION_FEE,
)
EXPIRE_TIME = tariff(
    element(component("TIME", "6.00", vat="20", step=600), reservation="RESERVATION_EXPIRES"),
    element(component("TIME", "3.00", vat="20", step=600), reservation="RESERVATION"),
    SESSION_FEE,
)


def test_billing_used_reservation_is_priced_by_reservation_elements() -> None:
    # Ex. 17: 22 -> 30 min x 2.00/h = 1.00 + 0.50 + 5.00 = 6.50 (1.20 + 0.60 + 5.50 = 7.30).
    used = price(EXPIRE_FEE, session(NOON, charged(20, 120), reserved_minutes=22), UTC_ZONE)
    assert totals(used) == (Decimal("6.50"), Decimal("7.30"))
    # Ex. 18: 22 -> 30 min x 3.00/h = 1.50 + 5.50 = 7.00 (1.80 + 0.60 + 5.50 = 7.90).
    used = price(EXPIRE_TIME, session(NOON, charged(20, 120), reserved_minutes=22), UTC_ZONE)
    assert totals(used) == (Decimal("7.00"), Decimal("7.90"))


def test_billing_expired_reservation_prefers_expiry_elements() -> None:
    # Ex. 17: expired after 1 h: fee 4.00 + 60 min x 2.00/h = 6.00 (4.80 + 2.40 = 7.20).
    expired = price_expired_reservation(EXPIRE_FEE, UTC_ZONE, NOON, at(13))
    assert totals(expired) == (Decimal("6.00"), Decimal("7.20"))
    # Ex. 18: expired after 1.5 h at the expiry rate: 90 min x 6.00/h = 9.00 (10.80).
    expired = price_expired_reservation(EXPIRE_TIME, UTC_ZONE, NOON, at(13, 30))
    assert totals(expired) == (Decimal("9.00"), Decimal("10.80"))


def test_billing_free_session_sends_zero_on_the_wire() -> None:
    cost = price(TABLE["free_session"].tariff, TABLE["free_session"].usage, UTC_ZONE)
    assert cost.wire_total == 0
    assert not cost.taxed


def test_billing_vat_absent_differs_from_zero_percent() -> None:
    absent = price(TABLE["vat_absent"].tariff, TABLE["vat_absent"].usage, UTC_ZONE)
    zero = price(TABLE["vat_zero_percent"].tariff, TABLE["vat_zero_percent"].usage, UTC_ZONE)
    assert (absent.taxed, zero.taxed) == (False, True)
    assert absent.wire_total == zero.wire_total == Decimal(3)


def test_billing_periods_follow_price_changes() -> None:
    """The complex Monday: a charging period at 1.00/h, then a parking one at 5.00/h."""
    cost = price(
        COMPLEX, session(MONDAY_0930, charged(11, 165, current_a=16), parked(42)), UTC_ZONE
    )
    summary = [
        (
            p.start.strftime("%H:%M"),
            p.phase.value,
            [(line.dimension.value, line.volume) for line in p.lines],
        )
        for p in cost.periods
    ]
    assert summary == [
        ("09:30", "charging", [("FLAT", 1), ("TIME", Decimal("2.75"))]),
        ("12:15", "parking", [("PARKING_TIME", Decimal("0.75"))]),
    ]


# A tariff changed during the session (OCPP 2.1 ChangeTransactionTariff; the operator's
# change on REST): the new tariff prices the usage from the change on.
A_FEE_ENERGY = tariff(element(component("FLAT", "1.00"), component("ENERGY", "0.30")), id="a")
B_FEE_ENERGY = tariff(element(component("FLAT", "5.00"), component("ENERGY", "0.20")), id="b")


def _changed(usage: Usage, *changes: tuple[datetime, Tariff]) -> Cost:
    first = TariffPart(usage.started_at, changes[0][1], UTC_ZONE)
    return price_parts([first, *(TariffPart(t, x, UTC_ZONE) for t, x in changes[1:])], usage)


def test_billing_tariff_changed_mid_session_prices_from_the_change() -> None:
    # 12:00-14:00, 5 kWh an hour; a at first, b from 13:00. The start fee once (a's):
    # 1.00 + 5 x 0.30 + 5 x 0.20 = 3.50.
    cost = _changed(session(NOON, charged(10, 120)), (NOON, A_FEE_ENERGY), (at(13), B_FEE_ENERGY))
    assert totals(cost) == (Decimal("3.50"), None)
    assert [(p.start, p.tariff_id) for p in cost.periods] == [(NOON, "a"), (at(13), "b")]


def test_billing_tariff_changed_step_size_rounds_the_session_once() -> None:
    # 32 min charging at 2.00/h (a), from 12:10:30 at 3.00/h (b), both in 5-minute steps.
    # a: 630 s = 0.35; b: 1290 s = 1.075; the session's 1920 s round up to 2100 s at the
    # last component (b's): 180 s x 3.00/h = 0.15. 1.575 -> 1.58 (each part rounded on its
    # own would bill 15 + 25 min: 0.50 + 1.25 = 1.75).
    a = tariff(element(component("TIME", "2.00", step=300)), id="a")
    b = tariff(element(component("TIME", "3.00", step=300)), id="b")
    change = NOON + timedelta(minutes=10, seconds=30)
    cost = _changed(session(NOON, charged(1, 32)), (NOON, a), (change, b))
    assert totals(cost) == (Decimal("1.58"), None)


def test_billing_tariff_changed_restrictions_count_from_the_start() -> None:
    # b prices the first hour of the session at 0.10/kWh, the rest at 0.40; from 12:30:
    # a: 1.00 + 2.5 kWh x 0.30 = 1.75; b: 12:30-13:00 2.5 kWh x 0.10 = 0.25, 13:00-14:00
    # 5 kWh x 0.40 = 2.00. 4.00 (not b's first hour from 12:30 on).
    b = tariff(
        element(component("ENERGY", "0.10"), max_duration=3600),
        element(component("ENERGY", "0.40")),
        id="b",
    )
    cost = _changed(session(NOON, charged(10, 120)), (NOON, A_FEE_ENERGY), (at(12, 30), b))
    assert totals(cost) == (Decimal("4.00"), None)


def test_billing_tariff_changed_bounded_by_the_tariff_in_force_at_the_end() -> None:
    capped = tariff(element(component("ENERGY", "0.50")), id="b", max_price={"excl_vat": 3})
    cost = _changed(session(NOON, charged(10, 120)), (NOON, A_FEE_ENERGY), (at(13), capped))
    # 1.00 + 1.50 + 1.00 = 3.50 > b's max_price 3.00.
    assert (totals(cost), cost.type_of_cost) == ((Decimal("3.00"), None), CostType.MAX)


def test_billing_tariff_changed_after_the_end_prices_nothing() -> None:
    usage = session(NOON, charged(10, 120))
    cost = _changed(usage, (NOON, A_FEE_ENERGY), (at(15), B_FEE_ENERGY))
    assert cost.total == price(A_FEE_ENERGY, usage, UTC_ZONE).total
    assert {p.tariff_id for p in cost.periods} == {"a"}


def test_billing_tariff_change_keeps_the_currency() -> None:
    other = tariff(element(component("ENERGY", "0.20")), id="b", currency="CHF")
    with pytest.raises(ValueError, match="one currency"):
        _changed(session(NOON, charged(10, 120)), (NOON, A_FEE_ENERGY), (at(13), other))
