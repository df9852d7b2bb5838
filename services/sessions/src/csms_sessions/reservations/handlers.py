"""Handler of a 2.x station's ReservationStatusUpdate (2.0.1 H04); the gateway answers it."""

import logging

from csms_ocpp.messages import RESERVATION_STATUS_UPDATE, ReservationStatusUpdateRequest
from csms_sessions.context import EventContext, calls
from csms_sessions.reservations.service import on_status_update

logger = logging.getLogger(__name__)


@calls.handles(RESERVATION_STATUS_UPDATE)
async def on_reservation_status_update(
    ctx: EventContext, request: ReservationStatusUpdateRequest
) -> None:
    """Record that the station ended a reservation (Expired or Removed)."""
    reservation_id = request["reservationId"]
    status = request["reservationUpdateStatus"]
    updated = await on_status_update(ctx.session, ctx.station.station_id, reservation_id, status)
    if updated is None:
        logger.warning("%s updated unknown reservation %s", ctx.station.station_id, reservation_id)
