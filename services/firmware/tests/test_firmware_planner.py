"""The campaign planner and maintenance windows: pure logic, no I/O."""

import dataclasses
from datetime import UTC, datetime, time, timedelta

import pytest
from pydantic import ValidationError

from csms_firmware.campaigns.plan import FailureThreshold, RolloutPlan
from csms_firmware.campaigns.planner import (
    CampaignSnapshot,
    StationProgress,
    assign_waves,
    current_wave,
    plan,
)
from csms_firmware.campaigns.states import StationState
from csms_firmware.campaigns.window import Window, is_open, next_opening
from csms_firmware.versions import version_key

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 02:00 UTC (03:00 in Berlin)


def stations(count: int, wave_length: int, **fields: object) -> list[StationProgress]:
    return [
        StationProgress(
            station_id=station_id,
            wave=wave,
            position=position,
            state=StationState.PENDING,
            online=True,
            **fields,  # type: ignore[arg-type]
        )
        for station_id, wave, position in assign_waves(
            [f"S{i:03d}" for i in range(count)], wave_length
        )
    ]


def snapshot(**plan_fields: object) -> CampaignSnapshot:
    return CampaignSnapshot(
        plan=RolloutPlan.model_validate(plan_fields),
        running=True,
        failed_since_resume=0,
        finished_since_resume=0,
    )


def with_state(
    items: list[StationProgress], ids: set[str], state: StationState
) -> list[StationProgress]:
    return [dataclasses.replace(s, state=state) if s.station_id in ids else s for s in items]


def test_the_first_wave_goes_first_within_the_download_cap() -> None:
    fleet = stations(10, 4)
    decision = plan(snapshot(wave_size=4, max_concurrent_downloads=3), fleet, NOW)
    assert decision.dispatch == ["S000", "S001", "S002"]


def test_the_next_wave_waits_for_the_last_one_to_finish() -> None:
    fleet = with_state(stations(8, 4), {"S000", "S001", "S002"}, StationState.SUCCEEDED)
    fleet = with_state(fleet, {"S003"}, StationState.INSTALLING)
    assert plan(snapshot(wave_size=4), fleet, NOW).dispatch == []
    fleet = with_state(fleet, {"S003"}, StationState.FAILED)
    assert plan(snapshot(wave_size=4), fleet, NOW).dispatch == ["S004", "S005", "S006", "S007"]


def test_an_offline_station_does_not_hold_its_wave_and_is_picked_up_when_back() -> None:
    fleet = stations(4, 2)
    fleet[1] = StationProgress("S001", 0, 1, StationState.PENDING, online=False)
    fleet = with_state(fleet, {"S000"}, StationState.SUCCEEDED)
    assert plan(snapshot(wave_size=2), fleet, NOW).dispatch == ["S002", "S003"]
    fleet[1] = StationProgress("S001", 0, 1, StationState.PENDING, online=True)
    assert plan(snapshot(wave_size=2), fleet, NOW).dispatch[0] == "S001"


def test_downloading_stations_hold_their_slots() -> None:
    fleet = with_state(stations(6, 6), {"S000", "S001"}, StationState.DOWNLOADING)
    fleet = with_state(fleet, {"S002"}, StationState.DOWNLOADED)
    assert plan(snapshot(max_concurrent_downloads=3), fleet, NOW).dispatch == ["S003"]


def test_the_window_is_local_to_each_station() -> None:
    window = {"start": "01:00", "end": "03:00"}  # 02:00 UTC = 03:00 in Berlin: closed there
    fleet = [
        StationProgress("UTC-1", 0, 0, StationState.PENDING, online=True, timezone="UTC"),
        StationProgress("BER-1", 0, 1, StationState.PENDING, online=True, timezone="Europe/Berlin"),
    ]
    decision = plan(snapshot(window=window), fleet, NOW)
    assert decision.dispatch == ["UTC-1"]
    assert decision.wake_at == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 01:00 in Berlin


def test_a_window_across_midnight() -> None:
    window = Window(start=time(22), end=time(4))
    assert is_open(window, "UTC", NOW)
    assert not is_open(window, "UTC", NOW.replace(hour=12))
    assert next_opening(window, "UTC", NOW.replace(hour=12)) == NOW.replace(hour=22)


def test_a_window_on_some_days_only_and_one_that_never_opens() -> None:
    saturdays = Window(start=time(1), end=time(5), days=[5])
    assert not is_open(saturdays, "UTC", NOW)
    assert next_opening(saturdays, "UTC", NOW) == datetime(2026, 3, 7, 1, 0, tzinfo=UTC)
    assert next_opening(saturdays, "UTC", NOW, until=NOW + timedelta(days=2)) is None
    assert next_opening(Window(start=time(1), end=time(1)), "UTC", NOW) is None
    assert next_opening(Window(start=time(1), end=time(5), days=[]), "UTC", NOW) is None


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        Window.model_validate({"start": "01:00", "end": "05:00", "timezone": "Mars/Olympus"})


def test_the_failure_threshold_pauses() -> None:
    fleet = stations(10, 10)
    reached = CampaignSnapshot(
        plan=RolloutPlan(failure_threshold=FailureThreshold(count=2)),
        running=True,
        failed_since_resume=2,
        finished_since_resume=5,
    )
    decision = plan(reached, fleet, NOW)
    assert decision.pause == "failure threshold reached"
    assert decision.dispatch == []
    assert FailureThreshold(percent=10).reached(failed=1, finished=10)
    assert not FailureThreshold(percent=10).reached(failed=1, finished=9)  # below min_sample
    assert not FailureThreshold(percent=10).reached(failed=1, finished=11)


def test_a_quiet_attempt_is_asked_then_given_up() -> None:
    sent = NOW - timedelta(seconds=60)
    fleet = [
        StationProgress("S1", 0, 0, StationState.DOWNLOADING, online=True, last_activity_at=sent)
    ]
    assert plan(snapshot(silence_timeout_s=100), fleet, NOW).trigger == ["S1"]
    triggered = [
        StationProgress(
            "S1", 0, 0, StationState.DOWNLOADING, online=True, last_activity_at=sent, triggered=True
        )
    ]
    decision = plan(snapshot(silence_timeout_s=100), triggered, NOW)
    assert decision.trigger == [] and decision.silent == []
    assert decision.wake_at == sent + timedelta(seconds=100)
    assert plan(snapshot(silence_timeout_s=50), triggered, NOW).silent == ["S1"]


def test_silence_is_counted_only_as_far_as_the_consumer_has_read() -> None:
    last_heard = NOW - timedelta(seconds=500)
    fleet = [
        StationProgress(
            "S1", 0, 0, StationState.DOWNLOADING, online=True, last_activity_at=last_heard
        )
    ]
    # The consumer reads records 450 s old: the station may well have spoken since.
    lagging = dataclasses.replace(
        snapshot(silence_timeout_s=300), heard_until=NOW - timedelta(seconds=450)
    )
    decision = plan(lagging, fleet, NOW)
    assert decision.silent == [] and decision.trigger == []
    # Asked at half the timeout by the station's clock, i.e. 100 s of reading from here.
    assert decision.wake_at == last_heard + timedelta(seconds=150 + 450)
    caught_up = dataclasses.replace(lagging, heard_until=NOW)
    assert plan(caught_up, fleet, NOW).silent == ["S1"]
    # A position ahead of the planning time counts as now.
    ahead = dataclasses.replace(lagging, heard_until=NOW + timedelta(seconds=600))
    assert plan(ahead, fleet, NOW - timedelta(seconds=250)).trigger == ["S1"]


def test_a_retry_waits_for_its_delay() -> None:
    later = NOW + timedelta(seconds=30)
    fleet = [StationProgress("S1", 0, 0, StationState.PENDING, online=True, retry_at=later)]
    decision = plan(snapshot(), fleet, NOW)
    assert decision.dispatch == [] and decision.wake_at == later
    assert plan(snapshot(), fleet, later).dispatch == ["S1"]


def test_done_when_every_station_is_final_and_waves_counted() -> None:
    fleet = with_state(stations(3, 1), {"S000", "S001", "S002"}, StationState.SKIPPED)
    assert plan(snapshot(), fleet, NOW).complete
    assert current_wave(stations(5, 2)) == 0
    assert RolloutPlan(wave_percent=10).wave_length(1000) == 100
    assert RolloutPlan().wave_length(7) == 7


def test_plan_bounds() -> None:
    with pytest.raises(ValidationError):
        RolloutPlan.model_validate({"wave_size": 5, "wave_percent": 10})
    with pytest.raises(ValidationError):
        RolloutPlan.model_validate({"failure_threshold": {}})
    with pytest.raises(ValidationError):
        RolloutPlan.model_validate({"max_concurrent_downloads": 0})


def test_versions_order_naturally() -> None:
    ordered = ["1.9.2", "1.10.0-rc1", "1.10.0", "2.0"]
    assert sorted(["2.0", "1.10.0", "1.9.2", "1.10.0-rc1"], key=version_key) == ordered
