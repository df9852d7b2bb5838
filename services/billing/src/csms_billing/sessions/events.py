"""The sessions service's domain events (typed, ``csms_core.events``) as billing's facts:
``Opened``, ``SampleIn``, ``Figures``.

Only what billing prices from is read: who charged where and when, the register,
power, current and charging-state samples, and the final figures of an ended
session. The consumer decodes each record with its topic's model, so a record
that is none is dead-lettered with the reason before it gets here.
"""

from collections.abc import Iterable
from datetime import timedelta

from csms_billing.sessions.models import SampleKind
from csms_billing.sessions.service import Figures, Opened, SampleIn
from csms_core.events import (
    IdTokenRef,
    MeterSample,
    MeterValues,
    SessionEnded,
    SessionFinalized,
    SessionStarted,
    SessionUpdated,
)

ENERGY_REGISTER = "Energy.Active.Import.Register"
_OUTLET = frozenset({None, "Outlet"})
# 2.x chargingState: the EV requests power (TIME) or not (PARKING_TIME, OCPI 2.2.1 errata).
CHARGING_STATES = {
    "Charging": True,
    "SuspendedEVSE": True,
    "SuspendedEV": False,
    "EVConnected": False,
    "Idle": False,
}


def opened(event: SessionStarted) -> Opened:
    started, token = event.data, event.data.id_token
    return Opened(
        session_id=started.session_id,
        station_id=started.station_id,
        transaction_id=started.transaction_id,
        started_at=started.started_at,
        evse_id=started.evse_id,
        connector_id=started.connector_id,
        ocpp_version=event.ocpp_version,
        id_token=token.id_token if token else None,
        token_type=token.type if token else None,
        group_id=token.group_id if token else None,
        meter_start_wh=started.meter_start_wh,
    )


def opened_at_end(event: SessionEnded | SessionFinalized) -> Opened:
    """The session as its end tells it, for a session billing never heard start (its
    ``session.started`` not read, or lost)."""
    ended, token = event.data, event.data.id_token
    started_at = ended.started_at or ended.ended_at - timedelta(seconds=ended.duration_s)
    return Opened(
        session_id=ended.session_id,
        station_id=event.station_id,
        transaction_id=ended.transaction_id,
        started_at=started_at,
        evse_id=ended.evse_id,
        ocpp_version=event.ocpp_version,
        id_token=token.id_token if token else None,
        token_type=token.type if token else None,
        group_id=token.group_id if token else None,
        meter_start_wh=ended.meter_start_wh,
    )


def progress(event: SessionUpdated) -> list[SampleIn]:
    """A session.updated's charging state, as a sample (none when it names none)."""
    charging = CHARGING_STATES.get(event.data.charging_state or "")
    if charging is None:
        return []
    return [SampleIn(event.data.updated_at, SampleKind.CHARGING, float(charging))]


def driver(event: SessionUpdated) -> tuple[tuple[str, str], str | None] | None:
    """The token a session.updated names (one that came after the start) and its group."""
    token = event.data.id_token
    return None if token is None else ((token.id_token, token.type), token.group_id)


def figures(event: SessionEnded | SessionFinalized) -> Figures:
    """The sessions service's figures of an ended session (final once its start is known)."""
    ended = event.data
    return Figures(
        ended_at=ended.ended_at,
        meter_stop_wh=ended.meter_stop_wh,
        stop_reason=ended.stop_reason,
        started_at=ended.started_at,
        meter_start_wh=ended.meter_start_wh,
        energy_wh=ended.energy_wh,
        final=ended.final,
        id_token=_token(ended.id_token),
        group_id=ended.id_token.group_id if ended.id_token else None,
    )


def _token(token: IdTokenRef | None) -> tuple[str, str] | None:
    return None if token is None else (token.id_token, token.type)


def meter_samples(event: MeterValues) -> list[SampleIn]:
    """The samples of a meter.values that billing prices from."""
    return list(_priced_samples(event.data.samples))


def _priced_samples(samples: Iterable[MeterSample]) -> Iterable[SampleIn]:
    for sample in samples:
        if sample.value is None or sample.location not in _OUTLET:
            continue
        kind = _kind(sample)
        if kind is not None:
            yield SampleIn(
                at=sample.timestamp,
                kind=kind,
                value=sample.value,
                phase=sample.phase or "",
                context=sample.context,
                signed=sample.signed,
            )


def _kind(sample: MeterSample) -> SampleKind | None:
    if sample.measurand == ENERGY_REGISTER and sample.phase is None and sample.unit == "Wh":
        return SampleKind.REGISTER
    if sample.measurand == "Power.Active.Import" and sample.phase is None and sample.unit == "W":
        return SampleKind.POWER
    if sample.measurand == "Current.Import" and sample.unit == "A":
        return SampleKind.CURRENT
    return None
