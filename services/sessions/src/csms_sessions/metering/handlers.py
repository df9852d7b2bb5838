"""Handler of a station's MeterValues (1.6 with or without a transaction; 2.x per EVSE)."""

from csms_ocpp.messages import (
    METER_VALUES,
    METER_VALUES_16,
    MeterValuesRequest,
    MeterValuesRequest16,
)
from csms_sessions.context import EventContext, calls, reads_station_id_only
from csms_sessions.metering.normalize import Sample, samples_of
from csms_sessions.transactions import lifecycle, service
from csms_sessions.transactions.events import publish_updated
from csms_sessions.transactions.models import SessionState
from csms_sessions.transactions.resolution import still_running


@calls.handles(METER_VALUES)
async def on_meter_values(ctx: EventContext, request: MeterValuesRequest) -> None:
    """Store the samples of an EVSE (2.x MeterValues are never part of a transaction: those
    come in TransactionEvent). The gateway answers them."""
    samples = samples_of(request["meterValue"], is_2x=True)
    await _store(ctx, samples, request["evseId"], None)


# 2.x MeterValues belong to no transaction: their handler reads the station's id only.
reads_station_id_only(METER_VALUES)


@calls.handles(METER_VALUES_16)
async def on_meter_values_16(ctx: EventContext, request: MeterValuesRequest16) -> None:
    """Store the samples; a 1.6 transactionId ties them to its session."""
    samples = samples_of(request["meterValue"], is_2x=False)
    await _store(ctx, samples, request["connectorId"], request.get("transactionId"))


async def _store(
    ctx: EventContext, samples: list[Sample], evse_id: int, transaction_id: int | None
) -> None:
    charging = None
    if transaction_id is not None:
        charging = await service.find(
            ctx.session, ctx.station.station_id, str(transaction_id), ctx.known
        )
        if charging is None:
            earliest = min((s.timestamp for s in samples), default=ctx.received_at)
            charging = await service.open_unknown(
                ctx, "MeterValues", str(transaction_id), earliest, evse_id
            )
            await lifecycle.supersede(ctx, charging)
    if charging is not None and charging.state is SessionState.ENDED:
        # MeterValues after the stop: late data, never the ended session's energy.
        latest = max((s.timestamp for s in samples), default=None)
        await lifecycle.receive_late(ctx, charging, samples, timestamp=latest)
        return
    new = await service.record_samples(ctx, samples, evse_id, charging)
    if charging is not None and new:
        still_running(charging, max(s.timestamp for s in new))
        await service.refresh(ctx.session, charging, new)
        publish_updated(ctx, charging)
