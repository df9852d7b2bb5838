"""EV model and the charging limit in force."""

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simulator_harness import Harness

from csms_ocpp import OcppVersion
from csms_simulator.clock import ManualClock, ocpp_time
from csms_simulator.ev import CATALOGUE, TAPER_START_SOC, Ev, charge_curve_w, drawn_power_w
from csms_simulator.profiles import ActiveTransaction, ProfileStore, parse_profile


def test_curve_is_flat_then_tapers_to_a_trickle() -> None:
    assert charge_curve_w(11_000, 0.2) == 11_000
    assert charge_curve_w(11_000, TAPER_START_SOC) == 11_000
    assert 550 < charge_curve_w(11_000, 0.99) < charge_curve_w(11_000, 0.9) < 11_000


def test_charging_stores_energy_and_stops_at_target() -> None:
    ev = Ev(CATALOGUE[0], soc=0.5, arrival_s=0, departure_s=3600, target_soc=0.6)
    stored = ev.charge(7_400, 3600)
    assert stored == pytest.approx(0.1 * 40_000)  # only up to the target
    assert ev.full
    assert ev.curve_w(dc=False) == 0


def test_power_is_the_lowest_of_ev_evse_and_limit() -> None:
    ev = Ev(CATALOGUE[3], soc=0.3, arrival_s=0, departure_s=1)  # 22 kW on-board charger
    assert drawn_power_w(ev, 11_000, None) == 11_000
    assert drawn_power_w(ev, 22_080, 6_900) == 6_900
    assert drawn_power_w(ev, 22_080, 0) == 0


def _profile(clock: ManualClock, **fields: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "startSchedule": ocpp_time(clock.wall(0)),
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
        },
    }
    profile.update(fields)
    return profile


def test_amperes_become_watts_and_tx_profile_overrides_default() -> None:
    clock, store = ManualClock(), ProfileStore()
    store.install(parse_profile(_profile(clock), 0, clock, is_2x=False))
    tx = ActiveTransaction("7", 0.0)
    assert store.limit_w(1, 10, tx) == 16 * 230 * 3
    tx_profile = _profile(
        clock,
        chargingProfileId=2,
        chargingProfilePurpose="TxProfile",
        transactionId=7,
        chargingSchedule={
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 20_000}],
        },
        chargingProfileKind="Relative",
    )
    store.install(parse_profile(tx_profile, 1, clock, is_2x=False))
    assert store.limit_w(1, 10, tx) == 20_000  # TxProfile wins even when higher
    store.end_transaction(1)
    assert store.limit_w(1, 10, tx) == 16 * 230 * 3


def test_station_max_caps_and_higher_stack_level_wins_while_it_has_a_period() -> None:
    clock, store = ManualClock(), ProfileStore()
    store.install(parse_profile(_profile(clock), 0, clock, is_2x=False))
    higher = _profile(clock, chargingProfileId=3, stackLevel=5)
    higher["chargingSchedule"] = {
        "startSchedule": ocpp_time(clock.wall(0)),
        "duration": 100,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 3000}],
    }
    store.install(parse_profile(higher, 0, clock, is_2x=False))
    assert store.limit_w(1, 50, None) == 3000
    assert store.limit_w(1, 150, None) == 16 * 230 * 3  # past its duration: the lower one
    assert store.next_change_after(50, None) == 100
    cap = _profile(clock, chargingProfileId=4, chargingProfilePurpose="ChargePointMaxProfile")
    cap["chargingSchedule"]["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": 10}]
    store.install(parse_profile(cap, 0, clock, is_2x=False))
    assert store.limit_w(1, 150, None, sharing=2) == 10 * 230 * 3 / 2
    assert store.clear(profile_id=4) == 1


def test_daily_recurring_profile_repeats() -> None:
    clock, store = ManualClock(), ProfileStore()
    profile = _profile(clock, chargingProfileKind="Recurring", recurrencyKind="Daily")
    profile["chargingSchedule"]["chargingSchedulePeriod"] = [
        {"startPeriod": 0, "limit": 10},
        {"startPeriod": 3600, "limit": 20},
    ]
    store.install(parse_profile(profile, 1, clock, is_2x=False))
    day = 86400
    assert store.limit_w(1, day + 10, None) == 10 * 690
    assert store.limit_w(1, 2 * day + 3700, None) == 20 * 690


periods = st.lists(st.tuples(st.integers(0, 7200), st.floats(0, 40)), min_size=1, max_size=4).map(
    lambda items: (
        [{"startPeriod": 0, "limit": items[0][1]}]
        + [{"startPeriod": start, "limit": round(limit, 1)} for start, limit in items[1:]]
    )
)
profiles = st.lists(
    st.tuples(
        st.sampled_from(["TxDefaultProfile", "ChargingStationMaxProfile", "TxProfile"]),
        st.integers(0, 3),
        st.sampled_from(["A", "W"]),
        periods,
        st.sampled_from(["Absolute", "Relative"]),
    ),
    max_size=4,
)


@settings(max_examples=40, deadline=None)
@given(
    profiles=profiles, seed=st.integers(0, 10_000), steps=st.lists(st.floats(1, 900), max_size=30)
)
def test_a_station_never_draws_more_than_the_limit_in_force(
    profiles: list[tuple[str, int, str, list[dict[str, Any]], str]],
    seed: int,
    steps: list[float],
) -> None:
    harness = Harness(OcppVersion.V201, arrival_mean_s=1.0, evses_per_station=2)
    harness.station.rng = random.Random(seed)
    harness.connect()
    harness.run(5)  # EVs arrive and start charging
    for index, (purpose, stack, unit, schedule, kind) in enumerate(profiles):
        evse_id = 0 if purpose == "ChargingStationMaxProfile" else 1
        profile: dict[str, Any] = {
            "id": index + 1,
            "stackLevel": stack,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind,
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": unit,
                    "chargingSchedulePeriod": [
                        {**period, "limit": period["limit"] * (1 if unit == "A" else 500)}
                        for period in schedule
                    ],
                }
            ],
        }
        if kind == "Absolute":
            start = harness.clock.wall() + timedelta(seconds=30)
            profile["chargingSchedule"][0]["startSchedule"] = ocpp_time(start)
        session = harness.station.charging.evses[1].session
        if purpose == "TxProfile" and session is not None:
            profile["transactionId"] = session.transaction_id
        harness.call("SetChargingProfile", {"evseId": evse_id, "chargingProfile": profile})
    charging = harness.station.charging
    for step in steps:
        harness.run(step)
        now = harness.clock.now()
        for evse in charging.evses.values():
            if evse.charging:
                assert evse.session is not None
                limit = charging.limit_w(evse, now)
                assert limit is None or evse.session.power_w <= limit + 1e-6
                assert evse.session.power_w <= evse.rating_w
    assert harness.stats.sessions_started > 0
    assert harness.stats.limit_violations == 0
    assert harness.stats.invalid_outgoing == 0
