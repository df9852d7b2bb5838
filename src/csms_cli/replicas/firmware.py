"""``csms firmware``: one firmware and diagnostics replica and its REST API."""

from csms_cli.replicas.service import run_replica
from csms_firmware.app import create_app
from csms_firmware.db import SCHEMA
from csms_firmware.service import FirmwareService
from csms_firmware.settings import FirmwareSettings


async def run() -> None:
    """One firmware and diagnostics replica and its REST API until SIGTERM."""
    settings = FirmwareSettings()
    api = (settings.api_host, settings.api_port)
    await run_replica("firmware", settings, api, SCHEMA, FirmwareService, create_app)
