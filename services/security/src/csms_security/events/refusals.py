"""The gateways' refusals of stations (``ocpp.refusals``) as security events of our own.

A refused password or a certificate for another station is the standardized
FailedToAuthenticateAtCsms (seen from the CSMS's side); a profile below the station's,
an unknown station id and a station cut off for flooding have types of their own
(``classification.CSMS_TYPES``).
"""

from collections.abc import Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.events import ConnectionRefused
from csms_core.events.security import SecurityEventRecorded
from csms_security.events.models import EventSource
from csms_security.events.service import count, security_event

TYPE_OF_REASON = {
    "auth": "FailedToAuthenticateAtCsms",
    "certificate": "FailedToAuthenticateAtCsms",
    "security_profile": "SecurityProfileTooLow",
    "unknown_station": "UnknownStationRefused",
    "flooding": "MessageFlooding",
}


def on_refusal(
    session: AsyncSession, refused: ConnectionRefused, after_commit: list[Callable[[], None]]
) -> SecurityEventRecorded:
    """Store the refusal as a security event (in the caller's transaction); its record."""
    refusal = refused.data
    repeated = f" (and {refusal.repeated} more since the last report)" if refusal.repeated else ""
    event, record = security_event(
        refused.station_id,
        refused.ocpp_version or "2.0.1",
        TYPE_OF_REASON[refusal.reason],
        event_id=refused.id,
        timestamp=refused.time,
        tech_info=(
            f"{refusal.gateway_id} refused {refusal.remote_address} ({refusal.status}): "
            f"{refusal.detail}{repeated}"
        ),
        source=EventSource.CSMS,
    )
    session.add(event)
    after_commit.append(lambda: count(event))
    return record
