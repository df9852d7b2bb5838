"""The firmware service: migrations, the consumer, the campaign runner and the outbox."""

import asyncio
import logging
from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from csms_api.access import migrate_access
from csms_core.bus import Bus
from csms_core.db import session_factory, transaction
from csms_core.identity import migrate_identity
from csms_core.router import CommandClient, Router
from csms_core.service import batch_limits, consume_and_run
from csms_firmware.campaigns.runner import CampaignRunner
from csms_firmware.commands import StationCommands
from csms_firmware.consumer import TOPICS, FirmwareConsumer
from csms_firmware.db import migrate_firmware, utc_now
from csms_firmware.logs.ftp import serve_ftp
from csms_firmware.logs.service import LocationOf
from csms_firmware.models import ProcessedEvent
from csms_firmware.outbox import OutboxPublisher
from csms_firmware.position import PositionedBus, ReadPosition
from csms_firmware.settings import FirmwareSettings
from csms_firmware.store import BlobStore, LocalBlobStore

logger = logging.getLogger(__name__)

RETENTION = timedelta(days=7)
PRUNE_EVERY_S = 3600.0
downloads_served = Counter("csms_firmware_downloads_total", "image downloads served to stations")


class FirmwareService:
    """Everything the firmware service needs; the caller opens and closes the clients."""

    def __init__(
        self,
        settings: FirmwareSettings,
        *,
        bus: Bus,
        router: Router,
        commands: CommandClient,
        engine: AsyncEngine,
        store: BlobStore | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.engine = engine
        self.factory = session_factory(engine)
        self.store: BlobStore = store or LocalBlobStore(settings.store_dir)
        self.outbox = OutboxPublisher(bus, engine)
        self.commands = StationCommands(
            router, commands, settings.command_timeout_s, settings.command_parallelism
        )
        self.runner = CampaignRunner(settings, engine, self.commands, self.outbox)
        self.downloads_served = downloads_served
        self.ftp_address: tuple[str, int] | None = None
        self.upload_location = LocationOf(settings.station_base_url(), None)
        # Where this replica's consumer reads: silence is judged against the furthest behind.
        self.position = ReadPosition()
        self.ready = asyncio.Event()

    def changed(self) -> None:
        """A REST call changed campaigns: publish their events and plan again."""
        self.outbox.poke()
        self.runner.wake()

    async def migrate(self) -> None:
        # The station directory (site limits) and the API keys its REST API checks.
        await migrate_identity(self.engine)
        await migrate_access(self.engine)
        await migrate_firmware(self.engine)

    async def run(self, *, ready: asyncio.Event | None = None, stopping: asyncio.Event) -> None:
        """Migrate, then consume, run campaigns and publish events until ``stopping``."""
        await self.migrate()
        consumer = FirmwareConsumer(self.runner.wake, self.outbox.poke)
        background = {
            "firmware consumer position": self.position.run(self.factory, stopping),
            "firmware outbox": self.outbox.run(stopping),
            "firmware pruning": self._prune(stopping),
        }
        if self.settings.run_campaigns:
            background["firmware campaigns"] = self.runner.run(stopping)
        if self.settings.ftp_port:
            self.ftp_address = (
                self.settings.ftp_public_host or self.settings.ftp_host,
                self.settings.ftp_port,
            )
            self.upload_location = LocationOf(self.settings.station_base_url(), self.ftp_address)
            background["firmware ftp"] = serve_ftp(self, stopping)
        await consume_and_run(
            "firmware",
            bus=PositionedBus(self.bus, self.position),
            topic_names=TOPICS,
            group=self.settings.consumer_group,
            handler=consumer,
            engine=self.engine,
            concurrency=self.settings.consumer_concurrency,
            limits=batch_limits(self.settings, self.engine),
            stopping=stopping,
            background=background,
            ready=[self.ready, *([ready] if ready is not None else [])],
        )

    async def _prune(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            async with transaction(self.factory) as session:
                await session.exec(
                    delete(ProcessedEvent).where(
                        col(ProcessedEvent.processed_at) < utc_now() - RETENTION
                    )
                )
            await self.outbox.prune()
            try:
                await asyncio.wait_for(stopping.wait(), PRUNE_EVERY_S)
            except TimeoutError:
                continue
