"""``csms smartcharging``: one smart charging replica and its REST API."""

from csms_cli.replicas.service import run_replica
from csms_smartcharging.app import create_app
from csms_smartcharging.db import SCHEMA
from csms_smartcharging.service import SmartChargingService
from csms_smartcharging.settings import SmartChargingSettings


async def run() -> None:
    """One smart charging replica and its REST API until SIGTERM."""
    settings = SmartChargingSettings()
    api = (settings.api_host, settings.api_port)
    await run_replica("smartcharging", settings, api, SCHEMA, SmartChargingService, create_app)
