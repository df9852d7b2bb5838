"""Keeping each station's list of installed CA certificates fresh.

When a station that takes part in certificate management (its list was asked for
before, or it holds a certificate this CSMS issued) is accepted at boot and its
list is older than ``inventory_max_age_s``, it is asked again
(GetInstalledCertificateIds of every type its version knows, with a short
timeout: the station's other commands queue behind it). Stations that never did
certificates are not asked. Install and delete over REST refresh it too; ``POST
.../installed/refresh`` asks at once.
"""

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.router import StationOffline
from csms_security.calls import InvalidCall, StationCalls
from csms_security.certificates import inventory
from csms_security.certificates.models import InventoryRefresh, StationCertificate
from csms_security.certificates.wire import Untranslatable
from csms_security.db import utc_now
from csms_security.settings import SecuritySettings
from csms_security.waiting import next_item

logger = logging.getLogger(__name__)

REFRESH_TIMEOUT_S = 10.0


async def _holds_a_certificate(session: AsyncSession, station_id: str) -> bool:
    rows = await session.exec(
        select(StationCertificate.serial).where(StationCertificate.station_id == station_id)
    )
    return rows.first() is not None


class InventoryKeeper:
    def __init__(
        self,
        settings: SecuritySettings,
        factory: async_sessionmaker[AsyncSession],
        calls: StationCalls,
    ) -> None:
        self._max_age = timedelta(seconds=settings.inventory_max_age_s)
        self._factory = factory
        self._calls = calls
        self._booted: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)

    def station_booted(self, station_id: str) -> None:
        if self._max_age.total_seconds() <= 0:
            return
        with contextlib.suppress(asyncio.QueueFull):  # the next boot asks again
            self._booted.put_nowait(station_id)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            station_id = await next_item(self._booted, stopping, 3600.0)
            if station_id is None:
                continue
            try:
                await self.refresh_if_stale(station_id)
            except Exception:
                logger.exception("certificate list of %s not refreshed", station_id)

    async def refresh_if_stale(self, station_id: str) -> bool:
        """Ask the station for its list unless it is fresh; whether it was asked."""
        async with self._factory() as session:
            state = await session.get(InventoryRefresh, station_id)
            if state is None and not await _holds_a_certificate(session, station_id):
                return False  # it never did certificates with us: do not start now
            if state is not None and utc_now() - state.refreshed_at < self._max_age:
                return False
            try:
                await inventory.refresh(
                    session, self._calls, station_id, None, timeout_s=REFRESH_TIMEOUT_S
                )
            except (StationOffline, Untranslatable, InvalidCall) as exc:
                logger.info("certificate list of %s not refreshed: %r", station_id, exc)
                return False
        return True
