"""``csms billing``: one billing replica and its REST API."""

from csms_billing.app import create_app
from csms_billing.db import SCHEMA
from csms_billing.service import BillingService
from csms_billing.settings import BillingSettings
from csms_cli.replicas.service import run_replica


async def run() -> None:
    """One billing replica and its REST API until SIGTERM."""
    settings = BillingSettings()
    api = (settings.api_host, settings.api_port)
    await run_replica("billing", settings, api, SCHEMA, BillingService, create_app)
