"""Handler of a station's MeterValues (1.6 with or without a transaction; 2.x per EVSE)."""

from typing import Any

from csms_sessions.context import EventContext
from csms_sessions.metering.normalize import samples_of
from csms_sessions.transactions import lifecycle, service
from csms_sessions.transactions.events import publish_updated
from csms_sessions.transactions.models import SessionState
from csms_sessions.transactions.resolution import still_running


async def on_meter_values(ctx: EventContext) -> dict[str, Any]:
    """Store the samples; a 1.6 transactionId ties them to its session. The answer is empty."""
    payload = ctx.payload
    samples = samples_of(payload["meterValue"], is_2x=ctx.version.is_2x)
    # 2.x MeterValues are never part of a transaction (those come in TransactionEvent).
    evse_id = payload["evseId"] if ctx.version.is_2x else payload["connectorId"]
    transaction_id = None if ctx.version.is_2x else payload.get("transactionId")
    charging = None
    if transaction_id is not None:
        charging = await service.find(ctx.session, ctx.station.station_id, str(transaction_id))
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
        return {}
    new = await service.record_samples(ctx, samples, evse_id, charging)
    if charging is not None and new:
        still_running(charging, max(s.timestamp for s in new))
        await service.refresh(ctx.session, charging, new)
        publish_updated(ctx, charging)
    return {}
