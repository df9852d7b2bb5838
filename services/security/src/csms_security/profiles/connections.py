"""The gateway's connection events: the profile each station connects with, and the end of
an upgrade (the station came back with the profile it was raised to)."""

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.events.security import SecurityProfileUpgradedData
from csms_core.identity import StationIdentity
from csms_security.context import ConnectionChange
from csms_security.db import utc_now
from csms_security.profiles.models import ProfileUpgrade, StationLink, UpgradeState
from csms_security.profiles.service import active_upgrade

logger = logging.getLogger(__name__)


async def on_connection(
    session: AsyncSession, station_id: str, version: str, change: ConnectionChange, opened: bool
) -> SecurityProfileUpgradedData | None:
    """Record the connection; the upgrade it completes, if any."""
    link = await session.get(StationLink, station_id)
    if not opened:
        if link is not None and link.connection_id == change.connection_id:
            link.connected, link.updated_at = False, utc_now()
            session.add(link)
        return None
    profile = change.security_profile or 0
    link = link or StationLink(
        station_id=station_id,
        connected=True,
        security_profile=profile,
        ocpp_version=version,
        connection_id=change.connection_id,
    )
    link.connected, link.security_profile = True, profile
    link.ocpp_version, link.connection_id, link.updated_at = (
        version,
        change.connection_id,
        utc_now(),
    )
    session.add(link)
    upgrade = await active_upgrade(session, station_id)
    if upgrade is None or upgrade.state is not UpgradeState.AWAITING_RECONNECT:
        return None
    if profile < upgrade.target_profile:
        logger.warning(
            "%s reconnected with profile %d while being upgraded to %d (a fallback?)",
            station_id,
            profile,
            upgrade.target_profile,
        )
        return None
    return await _complete(session, upgrade)


async def _complete(session: AsyncSession, upgrade: ProfileUpgrade) -> SecurityProfileUpgradedData:
    """The upgrade is done: raise the station's recorded profile in the same transaction,
    so the gateway refuses the old one from the next handshake on (never lowered)."""
    identity = await session.get(StationIdentity, upgrade.station_id) or StationIdentity(
        station_id=upgrade.station_id
    )
    identity.security_profile = max(identity.security_profile or 0, upgrade.target_profile)
    identity.updated_at = utc_now()
    session.add(identity)
    upgrade.state, upgrade.updated_at = UpgradeState.COMPLETED, utc_now()
    session.add(upgrade)
    logger.info("%s upgraded to security profile %d", upgrade.station_id, upgrade.target_profile)
    return SecurityProfileUpgradedData(
        upgrade_id=upgrade.id,
        from_profile=upgrade.from_profile,
        to_profile=upgrade.target_profile,
    )
