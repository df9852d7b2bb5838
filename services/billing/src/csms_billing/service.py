"""The billing service: migrations, then its consumer and background work until stopped."""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from csms_billing.db import migrate_billing
from csms_billing.settings import BillingSettings
from csms_core.bus import Bus
from csms_core.db import session_factory
from csms_core.router import CommandClient, Router

logger = logging.getLogger(__name__)


class BillingService:
    """Everything the billing service needs; the caller opens and closes the clients."""

    def __init__(
        self,
        settings: BillingSettings,
        *,
        bus: Bus,
        router: Router,
        commands: CommandClient,
        engine: AsyncEngine,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.router = router
        self.commands = commands
        self.engine = engine
        self.factory = session_factory(engine)
        self.ready = asyncio.Event()

    async def migrate(self) -> None:
        await migrate_billing(self.engine)
