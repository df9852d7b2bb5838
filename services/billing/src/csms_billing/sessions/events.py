"""The sessions service's domain events as billing's facts (``Opened``, samples, ``Closed``).

Only what billing prices from is read: who charged where and when, the register,
power, current and charging-state samples. A record billing cannot read is
refused as ``Unprocessable`` (the consumer dead-letters it with the reason).
"""

from collections.abc import Iterable
from typing import TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from csms_billing.sessions.models import SampleKind
from csms_billing.sessions.service import Closed, Opened, SampleIn
from csms_core.bus import Unprocessable
from csms_core.envelope import Envelope

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


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Token(_Read):
    id_token: str
    type: str
    group_id: str | None = None


class _Started(_Read):
    session_id: str
    station_id: str
    transaction_id: str
    evse_id: int | None = None
    connector_id: int | None = None
    id_token: _Token | None = None
    started_at: AwareDatetime
    meter_start_wh: float | None = None
    site_id: str | None = None


class _Updated(_Read):
    session_id: str
    updated_at: AwareDatetime
    charging_state: str | None = None


class _Ended(_Read):
    session_id: str
    ended_at: AwareDatetime
    meter_stop_wh: float | None = None
    stop_reason: str | None = None
    final: bool = True


class _Sample(_Read):
    timestamp: AwareDatetime
    measurand: str
    value: float | None
    unit: str | None
    phase: str | None = None
    location: str | None = None
    context: str | None = None
    signed: dict[str, object] | None = None


class _MeterValues(_Read):
    session_id: str | None = None
    samples: list[_Sample]
    late: bool = False


Read = TypeVar("Read", bound=_Read)


def _parse(model: type[Read], envelope: Envelope) -> Read:
    try:
        return model.model_validate(envelope.data)
    except ValidationError as exc:
        raise Unprocessable(f"{envelope.type}: {exc.errors(include_url=False)[:3]}") from exc


def opened(envelope: Envelope) -> Opened:
    started = _parse(_Started, envelope)
    token = started.id_token
    return Opened(
        session_id=started.session_id,
        station_id=started.station_id,
        transaction_id=started.transaction_id,
        started_at=started.started_at,
        evse_id=started.evse_id,
        connector_id=started.connector_id,
        ocpp_version=envelope.ocpp_version,
        id_token=token.id_token if token else None,
        token_type=token.type if token else None,
        group_id=token.group_id if token else None,
        site_id=started.site_id,
        meter_start_wh=started.meter_start_wh,
    )


def progress(envelope: Envelope) -> tuple[str, list[SampleIn]]:
    """A session.updated: its session and the charging state it reports, as a sample."""
    updated = _parse(_Updated, envelope)
    charging = CHARGING_STATES.get(updated.charging_state or "")
    if charging is None:
        return updated.session_id, []
    return updated.session_id, [SampleIn(updated.updated_at, SampleKind.CHARGING, float(charging))]


def closed(envelope: Envelope) -> tuple[str, Closed, bool]:
    """(session, how it ended, whether the figures are final)."""
    ended = _parse(_Ended, envelope)
    return (
        ended.session_id,
        Closed(ended.ended_at, ended.meter_stop_wh, ended.stop_reason),
        ended.final,
    )


def meter_samples(envelope: Envelope) -> tuple[str | None, list[SampleIn], bool]:
    """(session, the samples billing prices from, late as the sessions service says)."""
    values = _parse(_MeterValues, envelope)
    return values.session_id, list(_priced_samples(values.samples)), values.late


def _priced_samples(samples: Iterable[_Sample]) -> Iterable[SampleIn]:
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


def _kind(sample: _Sample) -> SampleKind | None:
    if sample.measurand == ENERGY_REGISTER and sample.phase is None and sample.unit == "Wh":
        return SampleKind.REGISTER
    if sample.measurand == "Power.Active.Import" and sample.phase is None and sample.unit == "W":
        return SampleKind.POWER
    if sample.measurand == "Current.Import" and sample.unit == "A":
        return SampleKind.CURRENT
    return None
