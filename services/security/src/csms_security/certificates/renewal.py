"""Asking stations for a new CSR before their certificate expires (2.0.1 A02, 1.6 whitepaper).

A certificate is due for renewal when it expires within ``renew_before_days``, or
when a CA other than the current one issued it (the CA was rotated). The station
is asked with TriggerMessage (2.x: SignChargingStationCertificate,
SignV2GCertificate, SignCombinedCertificate) or ExtendedTriggerMessage
SignChargePointCertificate (1.6); the CSR it then sends takes the usual path.
A request is not repeated within ``renewal_retry_s`` (the station may be offline,
or answer later); each certificate's request is claimed before it is sent, so
replicas do not both ask.
"""

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import false, or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.router import CommandResult, StationOffline
from csms_ocpp import OcppVersion
from csms_security.authority.ca import CertificateUse
from csms_security.calls import StationCalls, describe
from csms_security.certificates import wire
from csms_security.certificates.models import CertificateStatus, StationCertificate
from csms_security.db import utc_now
from csms_security.settings import SecuritySettings
from csms_security.waiting import next_item

logger = logging.getLogger(__name__)

BATCH = 500


class Renewals:
    def __init__(
        self,
        settings: SecuritySettings,
        factory: async_sessionmaker[AsyncSession],
        calls: StationCalls,
        current_issuer_key_id: str | None,
    ) -> None:
        self._settings = settings
        self._factory = factory
        self._calls = calls
        # The local CA's key id; None when an external CA signs (no rotation to detect).
        self._current_issuer_key_id = current_issuer_key_id
        self._booted: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)

    def station_booted(self, station_id: str) -> None:
        """A station was accepted at boot: the moment to ask it, if it is due (and was
        offline when the fleet was checked)."""
        with contextlib.suppress(asyncio.QueueFull):  # the hourly check catches up
            self._booted.put_nowait(station_id)

    async def run(self, stopping: asyncio.Event) -> None:
        interval = self._settings.renewal_check_interval_s
        next_check = 0.0
        loop = asyncio.get_running_loop()
        while not stopping.is_set():
            station_id = await next_item(self._booted, stopping, max(0.0, next_check - loop.time()))
            if stopping.is_set():
                return
            try:
                if station_id is None:
                    next_check = loop.time() + interval
                await self.check_once(station_id=station_id)
            except Exception:
                logger.exception("renewal check failed")

    async def check_once(
        self, now: datetime | None = None, station_id: str | None = None
    ) -> list[str]:
        """Ask every station (or ``station_id``) whose certificate is due; the serials asked."""
        now = now or utc_now()
        asked = []
        for certificate in await self._due(now, station_id):
            if not await self._claim(certificate, certificate.renewal_requested_at, now):
                continue
            result = await self.request(certificate.station_id, certificate.certificate_use)
            if result is None:  # offline: ask again as soon as it is back
                await self._claim(certificate, now, certificate.renewal_requested_at)
            else:
                logger.info(
                    "renewal of %s on %s asked: %s",
                    certificate.serial,
                    certificate.station_id,
                    describe(result),
                )
                asked.append(certificate.serial)
        return asked

    async def request(self, station_id: str, use: CertificateUse) -> CommandResult | None:
        """Ask ``station_id`` for a new CSR for ``use``; None if it is offline."""

        def build(version: OcppVersion) -> tuple[str, dict[str, object]]:
            return wire.renewal_trigger(version, use)

        try:
            return await self._calls.call(station_id, build)
        except StationOffline:
            return None

    async def _due(self, now: datetime, station_id: str | None) -> list[StationCertificate]:
        window = timedelta(days=self._settings.renew_before_days)
        rotated = (
            col(StationCertificate.issuer_key_id) != self._current_issuer_key_id
            if self._current_issuer_key_id is not None
            else false()
        )
        query = select(StationCertificate)
        if station_id is not None:
            query = query.where(StationCertificate.station_id == station_id)
        async with self._factory() as session:
            rows = await session.exec(
                query.where(
                    StationCertificate.status == CertificateStatus.ACTIVE,
                    or_(col(StationCertificate.not_after) <= now + window, rotated),
                    or_(
                        col(StationCertificate.renewal_requested_at).is_(None),
                        col(StationCertificate.renewal_requested_at)
                        <= now - timedelta(seconds=self._settings.renewal_retry_s),
                    ),
                )
                .order_by(col(StationCertificate.not_after))
                .limit(BATCH)
            )
            return list(rows.all())

    async def _claim(
        self, certificate: StationCertificate, seen: datetime | None, now: datetime | None
    ) -> bool:
        """Set renewal_requested_at from ``seen`` to ``now`` unless another replica did."""
        async with self._factory() as session, session.begin():
            condition = (
                col(StationCertificate.renewal_requested_at).is_(None)
                if seen is None
                else col(StationCertificate.renewal_requested_at) == seen
            )
            result = await session.exec(
                update(StationCertificate)
                .where(col(StationCertificate.serial) == certificate.serial, condition)
                .values(renewal_requested_at=now)
            )
        return bool(result.rowcount == 1)
