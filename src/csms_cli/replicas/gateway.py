"""``csms gateway``: one gateway replica (it serves no REST API)."""

import asyncio

from csms_cli.platform import open_platform, setup_process
from csms_cli.runtime import stop_on_signals
from csms_core.db import session_factory
from csms_core.identity import IdentityStore, migrate_identity
from csms_gateway import Gateway, GatewaySettings


async def run() -> None:
    """One gateway replica until SIGTERM."""
    settings = GatewaySettings()
    setup_process(settings, f"csms-gateway-{settings.gateway_id}")
    stopping = asyncio.Event()
    stop_on_signals(stopping)
    async with open_platform(settings, f"csms-gateway-{settings.gateway_id}", []) as platform:
        await migrate_identity(platform.engine)
        identities = IdentityStore(session_factory(platform.engine))
        await Gateway(settings, platform.bus, platform.router, identities).run(stopping=stopping)
