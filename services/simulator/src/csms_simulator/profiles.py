"""The charging limit in force, from the charging profiles a station received.

Smart charging rules (OCPP 1.6 §3.13, 2.0.1 Part 2 K01/K08):
- per purpose, the valid profile with the highest ``stackLevel`` that has a period
  at time t gives that purpose's limit (a profile on EVSE 0 applies to every EVSE,
  one on the EVSE itself wins a tie);
- a TxProfile overrides the TxDefaultProfile during its transaction;
- the ChargingStationMaxProfile (1.6 ChargePointMaxProfile) caps the whole station;
- the limit in force is the lowest of these; amperes become watts at 230 V x phases.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from csms_simulator.clock import Clock, parse_time

VOLTAGE = 230.0
DEFAULT_PHASES = 3
_DAY_S = 86400.0
_RECURRENCY_S = {"Daily": _DAY_S, "Weekly": 7 * _DAY_S}
_EPSILON = 1e-6


class Purpose(StrEnum):
    STATION_MAX = "ChargingStationMaxProfile"  # 1.6: ChargePointMaxProfile
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"
    EXTERNAL = "ChargingStationExternalConstraints"
    PRIORITY = "PriorityCharging"  # 2.1
    LOCAL_GENERATION = "LocalGeneration"  # 2.1

    @classmethod
    def parse(cls, wire: str) -> "Purpose":
        return cls.STATION_MAX if wire == "ChargePointMaxProfile" else cls(wire)

    def wire(self, is_2x: bool) -> str:
        return "ChargePointMaxProfile" if self is Purpose.STATION_MAX and not is_2x else self.value


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    start_s: float
    limit: float | None  # in the schedule's unit; None: this period sets no limit
    phases: int = DEFAULT_PHASES


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """A received profile, with its times as simulated seconds."""

    id: int
    evse_id: int
    stack_level: int
    purpose: Purpose
    kind: str  # Absolute | Recurring | Relative | Dynamic
    unit: str  # A | W
    periods: tuple[SchedulePeriod, ...]
    received_s: float
    start_s: float | None = None
    duration_s: float | None = None
    recurrency: str | None = None
    valid_from_s: float | None = None
    valid_to_s: float | None = None
    transaction_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def schedule_start(self, t: float, tx_start_s: float | None) -> float | None:
        if self.kind == "Relative":
            return tx_start_s if tx_start_s is not None else t
        base = self.start_s if self.start_s is not None else self.received_s
        if self.kind == "Recurring" and self.recurrency in _RECURRENCY_S:
            cycle = _RECURRENCY_S[self.recurrency]
            return base + math.floor((t - base) / cycle) * cycle
        return base

    def limit_w_at(self, t: float, tx_start_s: float | None = None) -> float | None:
        """This profile's limit at ``t`` in W, or None if it sets none then."""
        if self.valid_from_s is not None and t < self.valid_from_s:
            return None
        if self.valid_to_s is not None and t >= self.valid_to_s:
            return None
        start = self.schedule_start(t, tx_start_s)
        if start is None or t < start:
            return None
        offset = t - start
        if self.duration_s is not None and offset >= self.duration_s:
            return None
        current = None
        for period in self.periods:
            if period.start_s <= offset + _EPSILON:
                current = period
        if current is None or current.limit is None:
            return None
        return to_watts(current.limit, self.unit, current.phases)

    def boundaries(self, t: float, tx_start_s: float | None) -> Iterable[float]:
        """Times at which this profile's limit may change."""
        start = self.schedule_start(t, tx_start_s)
        if start is not None:
            yield from (start + period.start_s for period in self.periods)
            if self.duration_s is not None:
                yield start + self.duration_s
            if self.kind == "Recurring" and self.recurrency in _RECURRENCY_S:
                yield start + _RECURRENCY_S[self.recurrency]
        if self.valid_from_s is not None:
            yield self.valid_from_s
        if self.valid_to_s is not None:
            yield self.valid_to_s


def to_watts(limit: float, unit: str, phases: int = DEFAULT_PHASES) -> float:
    return limit * VOLTAGE * phases if unit == "A" else limit


def from_watts(watts: float, unit: str, phases: int = DEFAULT_PHASES) -> float:
    return watts / (VOLTAGE * phases) if unit == "A" else watts


def parse_profile(
    raw: dict[str, Any], evse_id: int, clock: Clock, *, is_2x: bool
) -> ChargingProfile:
    """A 1.6 ``csChargingProfiles`` or a 2.x ``chargingProfile`` (first schedule used)."""
    schedule = raw["chargingSchedule"][0] if is_2x else raw["chargingSchedule"]

    def sim(key: str, source: dict[str, Any]) -> float | None:
        return clock.to_sim(parse_time(source[key])) if key in source else None

    transaction_id = raw.get("transactionId")
    return ChargingProfile(
        id=int(raw["id" if is_2x else "chargingProfileId"]),
        evse_id=evse_id,
        stack_level=int(raw["stackLevel"]),
        purpose=Purpose.parse(raw["chargingProfilePurpose"]),
        kind=raw["chargingProfileKind"],
        unit=schedule["chargingRateUnit"],
        periods=tuple(
            SchedulePeriod(
                float(period["startPeriod"]),
                float(period["limit"]) if "limit" in period else None,
                int(period.get("numberPhases", DEFAULT_PHASES)),
            )
            for period in sorted(schedule["chargingSchedulePeriod"], key=_start_period)
        ),
        received_s=clock.now(),
        start_s=sim("startSchedule", schedule),
        duration_s=float(schedule["duration"]) if "duration" in schedule else None,
        recurrency=raw.get("recurrencyKind"),
        valid_from_s=sim("validFrom", raw),
        valid_to_s=sim("validTo", raw),
        transaction_id=None if transaction_id is None else str(transaction_id),
        raw=raw,
    )


def _start_period(period: dict[str, Any]) -> float:
    return float(period["startPeriod"])


@dataclass(frozen=True, slots=True)
class ActiveTransaction:
    transaction_id: str
    start_s: float


class ProfileStore:
    """The profiles installed on one station."""

    def __init__(self) -> None:
        self.profiles: list[ChargingProfile] = []

    def install(self, profile: ChargingProfile) -> None:
        # 1.6 §3.13.2 / K01.FR.05: same id, or same stackLevel+purpose on the same EVSE, replaces.
        self.profiles = [
            kept
            for kept in self.profiles
            if kept.id != profile.id
            and not (
                kept.stack_level == profile.stack_level
                and kept.purpose is profile.purpose
                and kept.evse_id == profile.evse_id
            )
        ]
        self.profiles.append(profile)

    def clear(
        self,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> int:
        """Remove the profiles matching every given criterion; how many were removed."""

        def matches(profile: ChargingProfile) -> bool:
            if profile_id is not None:
                return profile.id == profile_id
            return (
                (evse_id is None or profile.evse_id == evse_id)
                and (purpose is None or profile.purpose is purpose)
                and (stack_level is None or profile.stack_level == stack_level)
            )

        before = len(self.profiles)
        self.profiles = [profile for profile in self.profiles if not matches(profile)]
        return before - len(self.profiles)

    def end_transaction(self, evse_id: int) -> None:
        """A TxProfile lives only as long as its transaction (1.6 §3.13.4, K01.FR.29)."""
        self.clear(evse_id=evse_id, purpose=Purpose.TX)

    def station_limit_w(self, t: float) -> float | None:
        """The cap on the whole station (ChargingStationMaxProfile and 2.1 LocalGeneration)."""
        limits = [
            _purpose_limit(self.profiles, purpose, 0, t, None)
            for purpose in (Purpose.STATION_MAX, Purpose.LOCAL_GENERATION)
        ]
        return _lowest(limits)

    def evse_limit_w(self, evse_id: int, t: float, tx: ActiveTransaction | None) -> float | None:
        """The limit from this EVSE's transaction profiles (TxProfile, else TxDefaultProfile)."""
        tx_limit = _purpose_limit(self.profiles, Purpose.TX, evse_id, t, tx) if tx else None
        if tx_limit is None:
            tx_limit = _purpose_limit(self.profiles, Purpose.TX_DEFAULT, evse_id, t, tx)
        return tx_limit

    def limit_w(
        self, evse_id: int, t: float, tx: ActiveTransaction | None, sharing: int = 1
    ) -> float | None:
        """The limit in force on one EVSE; the station cap is shared by ``sharing`` EVSEs."""
        station = self.station_limit_w(t)
        share = None if station is None else station / max(1, sharing)
        return _lowest([self.evse_limit_w(evse_id, t, tx), share])

    def next_change_after(self, t: float, tx: ActiveTransaction | None) -> float | None:
        tx_start = tx.start_s if tx else None
        later = [
            moment
            for profile in self.profiles
            for moment in profile.boundaries(t, tx_start)
            if moment > t + _EPSILON
        ]
        return min(later, default=None)

    def composite(
        self,
        evse_id: int,
        start: float,
        duration_s: float,
        tx: ActiveTransaction | None,
        rating_w: float,
    ) -> list[tuple[float, float]]:
        """(offset, limit W) periods over a window; where no profile limits, the EVSE rating."""
        periods: list[tuple[float, float]] = []
        t = start
        while t < start + duration_s:
            limit = self.station_limit_w(t) if evse_id == 0 else self.limit_w(evse_id, t, tx)
            watts = rating_w if limit is None else min(limit, rating_w)
            if not periods or periods[-1][1] != watts:
                periods.append((t - start, watts))
            later = self.next_change_after(t, tx)
            t = later if later is not None else start + duration_s
        return periods or [(0.0, rating_w)]


def _purpose_limit(
    profiles: list[ChargingProfile],
    purpose: Purpose,
    evse_id: int,
    t: float,
    tx: ActiveTransaction | None,
) -> float | None:
    candidates = [
        profile
        for profile in profiles
        if profile.purpose is purpose
        and profile.evse_id in (0, evse_id)
        and not (
            purpose is Purpose.TX
            and (
                profile.evse_id == 0
                or tx is None
                or profile.transaction_id not in (None, tx.transaction_id)
            )
        )
    ]
    candidates.sort(key=lambda profile: (profile.stack_level, profile.evse_id != 0), reverse=True)
    tx_start = tx.start_s if tx else None
    for profile in candidates:
        limit = profile.limit_w_at(t, tx_start)
        if limit is not None:
            return limit
    return None


def _lowest(limits: Iterable[float | None]) -> float | None:
    present = [limit for limit in limits if limit is not None]
    return min(present) if present else None
