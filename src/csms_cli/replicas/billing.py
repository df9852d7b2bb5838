"""``csms billing``: one billing replica and its REST API."""

from fastapi import FastAPI

from csms_billing.app import create_app
from csms_billing.db import SCHEMA
from csms_billing.service import BillingService
from csms_billing.settings import BillingSettings
from csms_cli.platform import Platform
from csms_cli.replicas.service import Service, run_service
from csms_core.router import CommandClient


async def run() -> None:
    """One billing replica and its REST API until SIGTERM."""
    settings = BillingSettings()

    def build(platform: Platform, commands: CommandClient) -> tuple[Service, FastAPI]:
        service = BillingService(
            settings,
            bus=platform.bus,
            router=platform.router,
            commands=commands,
            engine=platform.engine,
        )
        return service, create_app(service)

    await run_service("billing", settings, SCHEMA, (settings.api_host, settings.api_port), build)
