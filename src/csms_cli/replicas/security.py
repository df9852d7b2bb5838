"""``csms security``: one security replica (it holds the station CA) and its REST API."""

import asyncio

from csms_cli.platform import open_platform, setup_process
from csms_cli.replicas.service import audited_commands
from csms_cli.runtime import stop_on_signals
from csms_cli.serving import serve_api
from csms_security.app import create_app
from csms_security.db import SCHEMA
from csms_security.service import SecurityService
from csms_security.settings import SecuritySettings


async def run() -> None:
    """One security replica and its REST API until SIGTERM."""
    settings = SecuritySettings()
    setup_process(settings, "csms-security")
    stopping = asyncio.Event()
    stop_on_signals(stopping)
    async with (
        open_platform(settings, "csms-security", [SCHEMA]) as platform,
        audited_commands(platform, "security") as commands,
        SecurityService(
            settings,
            bus=platform.bus,
            router=platform.router,
            commands=commands,
            engine=platform.engine,
        ) as service,
        asyncio.TaskGroup() as tasks,
    ):
        tasks.create_task(service.run(stopping=stopping), name="security")
        api = serve_api(create_app(service), settings.api_host, settings.api_port, stopping)
        tasks.create_task(api, name="security api")
