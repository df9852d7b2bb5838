"""The billing service: migrations, then its consumer and background work until stopped."""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from csms_api.access import migrate_access
from csms_billing.cdrs.issuer import CdrIssuer
from csms_billing.consumer import TOPICS, TimelineConsumer
from csms_billing.costs.updates import CostUpdates
from csms_billing.db import migrate_billing
from csms_billing.inbound import calls
from csms_billing.payments.limits import PrepaidLimits
from csms_billing.payments.provider import PaymentProvider, SignedWebhookProvider
from csms_billing.settings import BillingSettings
from csms_core.bus import Bus
from csms_core.calls import Announcement
from csms_core.db import session_factory
from csms_core.identity import migrate_identity
from csms_core.router import CommandClient, Router
from csms_core.service import batch_limits, consume_and_run

logger = logging.getLogger(__name__)


def payment_provider(settings: BillingSettings) -> PaymentProvider | None:
    """The configured payment provider (None: web payments are off)."""
    secret = settings.payment_webhook_secret
    if secret is None:
        return None
    return SignedWebhookProvider(
        secret.get_secret_value().encode(), api_url=settings.payment_provider_url
    )


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
        self.issuer = CdrIssuer(settings, bus, engine)
        self.cost_updates = CostUpdates(settings, commands, engine)
        self.prepaid_limits = PrepaidLimits(settings, commands, engine)
        self.payment_provider = payment_provider(settings)
        self.ready = asyncio.Event()

    async def migrate(self) -> None:
        await migrate_access(self.engine)  # the API keys REST authentication checks
        await migrate_identity(self.engine)  # the station directory: sites of stations
        await migrate_billing(self.engine)

    async def run(self, *, ready: asyncio.Event | None = None, stopping: asyncio.Event) -> None:
        """Migrate, then consume the sessions' timeline until ``stopping``."""
        await self.migrate()
        consumer = TimelineConsumer(
            self.settings, self.bus, self.engine, self.issuer, self.commands
        )
        answers = Announcement(self.router, calls.declaration())
        await answers.announce()  # before ready: gateways route our CALLs to us from now
        await consume_and_run(
            "billing",
            bus=self.bus,
            topic_names=TOPICS,
            group=self.settings.consumer_group,
            handler=consumer,
            engine=self.engine,
            concurrency=self.settings.consumer_concurrency,
            limits=batch_limits(self.settings, self.engine),
            stopping=stopping,
            background={
                "billing CDRs": self.issuer.run(stopping),
                "billing running costs": self.cost_updates.run(stopping),
                "billing prepaid limits": self.prepaid_limits.run(stopping),
                "billing answers": answers.run(stopping),
            },
            ready=[self.ready, *([ready] if ready is not None else [])],
        )
