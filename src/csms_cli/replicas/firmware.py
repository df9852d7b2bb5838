"""``csms firmware``: one firmware and diagnostics replica and its REST API."""

from fastapi import FastAPI

from csms_cli.platform import Platform
from csms_cli.replicas.service import Service, run_service
from csms_core.router import CommandClient
from csms_firmware.app import create_app
from csms_firmware.db import SCHEMA
from csms_firmware.service import FirmwareService
from csms_firmware.settings import FirmwareSettings


async def run() -> None:
    """One firmware replica and its REST API until SIGTERM."""
    settings = FirmwareSettings()

    def build(platform: Platform, commands: CommandClient) -> tuple[Service, FastAPI]:
        service = FirmwareService(
            settings,
            bus=platform.bus,
            router=platform.router,
            commands=commands,
            engine=platform.engine,
        )
        return service, create_app(service)

    await run_service("firmware", settings, SCHEMA, (settings.api_host, settings.api_port), build)
