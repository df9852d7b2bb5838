"""The campaign planner: which stations get the update now, which went quiet, when to pause.

Pure logic over a snapshot of a campaign and its stations: no I/O, no clock of its own.

- Waves: stations are numbered into waves at creation; a wave starts once every station
  of the waves before it has finished, or waits offline (picked up when it returns).
- Concurrency: at most ``max_concurrent_downloads`` stations hold a download slot
  (dispatching, sent, downloading) at once.
- Window: an update starts only while the window is open in the station's time zone.
- Silence: an in-flight attempt with no word for half the silence timeout is asked for
  its status (TriggerMessage); after the whole timeout it has failed. Silence is counted
  up to ``heard_until`` (as far as the consumer has read the stations' messages), by the
  times the gateway received them: a lagging consumer is no silent station.
- Threshold: the campaign pauses once the failures since it started or resumed reach
  its failure threshold.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from csms_firmware.campaigns.plan import RolloutPlan
from csms_firmware.campaigns.states import DOWNLOAD_SLOT, IN_FLIGHT, TERMINAL, StationState
from csms_firmware.campaigns.window import is_open, next_opening


@dataclass(frozen=True, slots=True)
class StationProgress:
    """One station of a campaign, as the planner sees it."""

    station_id: str
    wave: int
    position: int
    state: StationState
    online: bool
    timezone: str = "UTC"
    last_activity_at: datetime | None = None  # its dispatch or its latest status
    retry_at: datetime | None = None
    triggered: bool = False


@dataclass(frozen=True, slots=True)
class CampaignSnapshot:
    plan: RolloutPlan
    running: bool
    failed_since_resume: int
    finished_since_resume: int
    ends_at: datetime | None = None
    heard_until: datetime | None = None  # None: the consumer is caught up (now)


@dataclass(slots=True)
class Decision:
    dispatch: list[str] = field(default_factory=list)
    trigger: list[str] = field(default_factory=list)  # ask for their current status
    silent: list[str] = field(default_factory=list)  # attempts that went quiet
    expire: list[str] = field(default_factory=list)  # never reached before ends_at
    pause: str | None = None
    complete: bool = False
    wake_at: datetime | None = None  # look again then, if nothing happens before


def current_wave(stations: Sequence[StationProgress]) -> int | None:
    """The lowest wave with a station still to do that is not waiting offline."""
    waiting = [
        s.wave
        for s in stations
        if s.state not in TERMINAL and not (s.state is StationState.PENDING and not s.online)
    ]
    return min(waiting, default=None)


def plan(
    campaign: CampaignSnapshot, stations: Sequence[StationProgress], now: datetime
) -> Decision:
    decision = Decision()
    if all(s.state in TERMINAL for s in stations):
        decision.complete = True
        return decision
    rollout = campaign.plan
    # In-flight updates of a paused campaign may still go quiet.
    _watch_silence(rollout, stations, now, campaign.heard_until or now, decision)
    if not campaign.running:
        return decision
    if campaign.ends_at is not None and now >= campaign.ends_at:
        decision.expire = [s.station_id for s in stations if s.state is StationState.PENDING]
    threshold = rollout.failure_threshold
    if threshold is not None and threshold.reached(
        campaign.failed_since_resume, campaign.finished_since_resume
    ):
        decision.pause = "failure threshold reached"
        return decision
    if decision.expire:
        return decision
    _dispatch(campaign, stations, now, decision)
    return decision


def _watch_silence(
    rollout: RolloutPlan,
    stations: Sequence[StationProgress],
    now: datetime,
    heard_until: datetime,
    decision: Decision,
) -> None:
    timeout = timedelta(seconds=rollout.silence_timeout_s)
    behind = max(timedelta(0), now - heard_until)
    for station in stations:
        if station.state not in IN_FLIGHT or station.last_activity_at is None:
            continue
        quiet = min(now, heard_until) - station.last_activity_at
        if quiet >= timeout:
            decision.silent.append(station.station_id)
        elif quiet >= timeout / 2 and not station.triggered and station.online:
            decision.trigger.append(station.station_id)
        else:
            due = station.last_activity_at + (timeout if station.triggered else timeout / 2)
            _wake(decision, due + behind)


def _dispatch(
    campaign: CampaignSnapshot,
    stations: Sequence[StationProgress],
    now: datetime,
    decision: Decision,
) -> None:
    rollout = campaign.plan
    wave = current_wave(stations)
    if wave is None:
        return
    silent = set(decision.silent)
    busy = sum(1 for s in stations if s.state in DOWNLOAD_SLOT and s.station_id not in silent)
    slots = rollout.max_concurrent_downloads - busy
    candidates = sorted(
        (s for s in stations if s.state is StationState.PENDING and s.online and s.wave <= wave),
        key=lambda s: (s.wave, s.position),
    )
    for station in candidates:
        if slots <= 0:
            return
        if station.retry_at is not None and station.retry_at > now:
            _wake(decision, station.retry_at)
            continue
        window = rollout.window
        if window is not None and not is_open(window, station.timezone, now):
            opening = next_opening(window, station.timezone, now, campaign.ends_at)
            if opening is not None:
                _wake(decision, opening)
            continue
        decision.dispatch.append(station.station_id)
        slots -= 1


def _wake(decision: Decision, at: datetime) -> None:
    if decision.wake_at is None or at < decision.wake_at:
        decision.wake_at = at


def assign_waves(station_ids: Sequence[str], wave_length: int) -> list[tuple[str, int, int]]:
    """(station id, wave, position) for each station, in the order given."""
    return [
        (station_id, index // wave_length, index) for index, station_id in enumerate(station_ids)
    ]
