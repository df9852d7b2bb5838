"""Properties of the cost engine over generated tariffs and sessions.

The cost of a session never goes down as the session goes on (more time, more
energy), within one tariff version: what a driver saw as the running cost is
never taken back. Checked on the exact amounts (rounding half up is monotone,
so the rounded ones follow).

Where OCPI 2.2.1 itself breaks this, the generators stay out, on purpose and
visibly: ``step_size`` rounds the session's total at the *last* component, so a
later, cheaper component (a cheaper hour, or cheaper parking after charging,
mod_cdrs: "the cost of charging will be calculated based on 21 minutes (not
25)") can bill less than an earlier prefix did. Hence: arbitrary restrictions
with the step size OCPI advises (1), or arbitrary step sizes with one component
per dimension and no parking price.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from csms_billing.pricing.engine import TariffPart, price, price_parts
from csms_billing.tariffs.ocpi import Tariff
from tests.billing_kit import Segment, session, totals

ZONE = ZoneInfo("Europe/Berlin")
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]

prices = st.decimals(min_value=0, max_value=5, places=2)
rates = st.decimals(min_value=0, max_value=25, places=1)
vats = st.none() | rates
clock = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30]))


@st.composite
def restrictions(draw: st.DrawFn) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if draw(st.booleans()):
        found["start_time"], found["end_time"] = draw(clock), draw(clock)
        if found["start_time"] == found["end_time"]:
            del found["end_time"]
    if draw(st.booleans()):
        found["day_of_week"] = draw(st.lists(st.sampled_from(DAYS), min_size=1, unique=True))
    if draw(st.booleans()):
        low = draw(st.integers(0, 30))
        found |= {"min_kwh": low, "max_kwh": low + draw(st.integers(1, 30))}
    if draw(st.booleans()):
        low = draw(st.integers(0, 7200))
        found |= {"min_duration": low, "max_duration": low + draw(st.integers(60, 7200))}
    if draw(st.booleans()):
        found["max_power"] = draw(st.integers(1, 50))
    return found


@st.composite
def restricted_tariffs(draw: st.DrawFn) -> Tariff:
    """Several elements with every kind of restriction; step_size 1 (OCPI's advice)."""
    elements = []
    for _ in range(draw(st.integers(1, 5))):
        kinds = draw(
            st.lists(
                st.sampled_from(["ENERGY", "TIME", "PARKING_TIME", "FLAT"]), min_size=1, unique=True
            )
        )
        element: dict[str, Any] = {"price_components": [_component(draw, k) for k in kinds]}
        if found := draw(restrictions()):
            element["restrictions"] = found
        elements.append(element)
    return _with_bounds(draw, {"id": "p", "currency": "EUR", "elements": elements})


def _component(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {"type": kind, "price": draw(prices), "step_size": 1}
    vat = draw(vats)
    return found if vat is None else found | {"vat": vat}


@st.composite
def stepped_tariffs(draw: st.DrawFn) -> Tariff:
    """One component per dimension, any step_size, nothing priced while parked."""
    kinds = draw(st.lists(st.sampled_from(["ENERGY", "TIME", "FLAT"]), min_size=1, unique=True))
    components = [
        {"type": k, "price": draw(prices), "step_size": draw(st.integers(1, 3600))} for k in kinds
    ]
    return _with_bounds(
        draw, {"id": "s", "currency": "EUR", "elements": [{"price_components": components}]}
    )


def _with_bounds(draw: st.DrawFn, body: dict[str, Any]) -> Tariff:
    taxed = any("vat" in c for e in body["elements"] for c in e["price_components"])
    for name, scale in (("min_price", 1), ("max_price", 10)):
        if draw(st.booleans()):
            excl = draw(prices) * scale
            bound = {"excl_vat": excl}
            body[name] = bound | ({"incl_vat": excl * (1 + draw(rates) / 100)} if taxed else {})
    return Tariff.model_validate(body)


segments = st.lists(
    st.builds(
        Segment,
        minutes=st.integers(1, 240),
        kwh=st.decimals(min_value=0, max_value=40, places=3),
        charging=st.none() | st.booleans(),
    ),
    min_size=1,
    max_size=8,
)
starts = st.builds(
    lambda minutes: datetime(2024, 3, 29, tzinfo=UTC) + timedelta(minutes=minutes),
    st.integers(0, 7 * 24 * 60),  # a week, over the switch to summer time (31 March)
)


def _never_decreases(tariff: Tariff, start: datetime, parts: list[Segment]) -> None:
    # From the first reading on: at the instant of the start nothing is measured yet (no power,
    # no current), so an element restricted on them cannot be chosen for that instant.
    costs = [price(tariff, session(start, *parts[:n]), ZONE) for n in range(1, len(parts) + 1)]
    for shorter, longer in pairwise(costs):
        assert longer.total.excl >= shorter.total.excl
        assert longer.total.incl >= shorter.total.incl


@settings(max_examples=150, deadline=None)
@given(restricted_tariffs(), starts, segments)
def test_billing_cost_never_decreases_as_the_session_goes_on(
    tariff: Tariff, start: datetime, parts: list[Segment]
) -> None:
    _never_decreases(tariff, start, parts)


@settings(max_examples=150, deadline=None)
@given(stepped_tariffs(), starts, segments)
def test_billing_cost_never_decreases_with_step_sizes(
    tariff: Tariff, start: datetime, parts: list[Segment]
) -> None:
    _never_decreases(tariff, start, parts)


@settings(max_examples=100, deadline=None)
@given(restricted_tariffs(), starts, segments, st.randoms(use_true_random=False))
def test_billing_cost_ignores_the_order_readings_arrive_in(
    tariff: Tariff, start: datetime, parts: list[Segment], shuffle: Any
) -> None:
    """Duplicated, reordered readings (an offline replay) price the same session alike."""
    usage = session(start, *parts)
    readings = [*usage.readings, *usage.readings[::2]]
    shuffle.shuffle(readings)
    replayed = type(usage)(usage.started_at, usage.ended_at, readings, usage.states, usage.gauges)
    assert price(tariff, replayed, ZONE).total == price(tariff, usage, ZONE).total


def test_billing_ocpi_step_size_can_lower_a_longer_session() -> None:
    """Why the generators keep step sizes apart: OCPI's own rule, shown (mod_cdrs step_size).

    TIME 6.00/h and PARKING_TIME 1.00/h, both per 5 minutes: 21 minutes of charging bill 25;
    one minute of parking more and the charging time is no longer rounded.
    """
    tariff = Tariff.model_validate(
        {
            "id": "ocpi",
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [
                        {"type": "TIME", "price": 6, "step_size": 300},
                        {"type": "PARKING_TIME", "price": 1, "step_size": 300},
                    ]
                }
            ],
        }
    )
    start = datetime(2024, 1, 2, 12, tzinfo=UTC)
    charging_only = price(tariff, session(start, Segment(21, 5, True)), ZONE)
    with_parking = price(tariff, session(start, Segment(21, 5, True), Segment(1, 0, False)), ZONE)
    assert totals(charging_only) == (Decimal("2.50"), None)  # 25 min x 6.00/h
    assert totals(with_parking) == (Decimal("2.18"), None)  # 21 min x 6.00/h + 5 min x 1.00/h


@settings(max_examples=100, deadline=None)
@given(restricted_tariffs() | stepped_tariffs(), starts, segments, st.integers(-60, 2000))
def test_billing_changing_to_the_same_tariff_changes_nothing(
    tariff: Tariff, start: datetime, parts: list[Segment], minutes: int
) -> None:
    """A tariff "changed" to itself at any moment (before the start, during the session,
    after its end) bills what the unchanged tariff bills, to the last digit: the change
    only cuts the session, and FLAT, step sizes and bounds stay the session's."""
    usage = session(start, *parts)
    change = start + timedelta(minutes=minutes)
    both = [TariffPart(start, tariff, ZONE), TariffPart(change, tariff, ZONE)]
    assert price_parts(both, usage).total == price(tariff, usage, ZONE).total


def test_billing_a_change_at_the_very_start_leaves_the_session_to_the_new_tariff() -> None:
    """The case the property above found: changed at the start instant, a first part of no
    time matched no power restriction and took its FLAT from the other element."""
    tariff = Tariff.model_validate(
        {
            "id": "p",
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "FLAT", "price": 0, "step_size": 1}],
                    "restrictions": {"max_power": 1.0},
                },
                {"price_components": [{"type": "FLAT", "price": 0.01, "step_size": 1}]},
            ],
        }
    )
    start = datetime(2024, 3, 29, tzinfo=UTC)
    usage = session(start, Segment(1, Decimal("0.000"), None))
    both = [TariffPart(start, tariff, ZONE), TariffPart(start, tariff, ZONE)]
    assert price_parts(both, usage).total == price(tariff, usage, ZONE).total
    assert price_parts(both, usage).total.incl == Decimal("0.00")
