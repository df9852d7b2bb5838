"""``csms smartcharging``: one smart charging replica and its REST API."""

from fastapi import FastAPI

from csms_cli.platform import Platform
from csms_cli.replicas.service import Service, run_service
from csms_core.router import CommandClient
from csms_smartcharging.app import create_app
from csms_smartcharging.db import SCHEMA
from csms_smartcharging.service import SmartChargingService
from csms_smartcharging.settings import SmartChargingSettings


async def run() -> None:
    """One smartcharging replica and its REST API until SIGTERM."""
    settings = SmartChargingSettings()

    def build(platform: Platform, commands: CommandClient) -> tuple[Service, FastAPI]:
        service = SmartChargingService(
            settings,
            bus=platform.bus,
            router=platform.router,
            commands=commands,
            engine=platform.engine,
        )
        return service, create_app(service)

    await run_service(
        "smartcharging", settings, SCHEMA, (settings.api_host, settings.api_port), build
    )
