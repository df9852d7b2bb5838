"""A real billing service on the product's embedded bus, router and SQLite, for tests."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csms_billing.db import SCHEMA
from csms_billing.service import BillingService
from csms_billing.settings import BillingSettings
from csms_core.bus.memory import InMemoryBus
from csms_core.db import create_engine
from csms_core.router import CommandClient
from csms_core.router.memory import InMemoryRouter
from csms_core.settings import Environment


def settings_for_tests(tmp_path: Path, **overrides: Any) -> BillingSettings:
    values: dict[str, Any] = {
        "environment": Environment.DEVELOPMENT,
        "kafka_bootstrap": None,
        "redis_url": None,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}",
        "log_json": False,
        "time_zone": "Europe/Amsterdam",
    }
    return BillingSettings(**(values | overrides))


@dataclass
class BillingHarness:
    service: BillingService
    bus: InMemoryBus
    router: InMemoryRouter


@asynccontextmanager
async def running_billing(tmp_path: Path, **overrides: Any) -> AsyncIterator[BillingHarness]:
    settings = settings_for_tests(tmp_path, **overrides)
    engine = create_engine(settings.database_url, [SCHEMA])
    bus, router = InMemoryBus(), InMemoryRouter()
    try:
        async with router, bus, CommandClient(router, "billing") as commands:
            service = BillingService(
                settings, bus=bus, router=router, commands=commands, engine=engine
            )
            await service.migrate()
            service.ready.set()
            yield BillingHarness(service, bus, router)
    finally:
        await engine.dispose()
