"""``csms sessions``: one sessions replica and its REST API, in one process or two
(``CSMS_SESSIONS_PROCESSES=2``: the consumer in a child, ``csms_cli.apart``)."""

import asyncio
import sys
from collections.abc import Mapping

from fastapi import FastAPI

from csms_cli.apart import ConsumerSupervisor, ControlChannel, RestartPolicy
from csms_cli.platform import Platform, open_platform, setup_process
from csms_cli.replicas.service import Service, audited_commands, run_service, warm_rest_path
from csms_cli.runtime import all_set_unless, stop_on_signals
from csms_cli.serving import serve_api
from csms_core.router import CommandClient
from csms_sessions.app import create_app
from csms_sessions.db import SCHEMA as SESSIONS_SCHEMA
from csms_sessions.service import SessionsService
from csms_sessions.settings import SessionsSettings


def sessions_service(
    settings: SessionsSettings, platform: Platform, commands: CommandClient
) -> SessionsService:
    """The sessions service on a platform's bus, router and database (every mode builds it)."""
    return SessionsService(
        settings,
        bus=platform.bus,
        router=platform.router,
        commands=commands,
        engine=platform.engine,
    )


async def run() -> bool:
    """One sessions replica and its REST API until SIGTERM; whether it stopped because a
    part of it failed (exit status 1)."""
    settings = SessionsSettings()
    if settings.sessions_processes == 2:
        return await _run_api(settings)

    def build(platform: Platform, commands: CommandClient) -> tuple[Service, FastAPI]:
        service = sessions_service(settings, platform, commands)
        return service, create_app(service)

    api = (settings.api_host, settings.api_port)
    await run_service("sessions", settings, SESSIONS_SCHEMA, api, build)
    return False


async def _run_api(settings: SessionsSettings) -> bool:
    """The sessions REST API in this process, its consumer in a child process (csms_cli.apart):
    ready while a child consumes; a child that ends is started again, and one that keeps
    ending stops this process too, with a failure."""
    setup_process(settings, "csms-sessions")
    stopping = asyncio.Event()
    stop_on_signals(stopping)
    consumer = ConsumerSupervisor(
        [sys.executable, "-m", "csms_cli", "sessions"],
        service="sessions",
        policy=RestartPolicy(
            max_restarts=settings.consumer_process_restarts,
            window_s=settings.consumer_process_restart_window_s,
            backoff_s=settings.consumer_process_restart_backoff_s,
        ),
    )
    async with (
        open_platform(settings, "csms-sessions", [SESSIONS_SCHEMA]) as platform,
        audited_commands(platform, "sessions") as commands,
    ):
        # Not run here: its consumer and background work run in the child. The REST routes
        # use its clients; the local lists' pending sends run here too, for the routes' wakes.
        service = sessions_service(settings, platform, commands)

        async def consumer_metrics() -> Mapping[str, bytes | None]:
            return {"consumer": await consumer.metrics()}

        app = create_app(service, other_processes=consumer_metrics)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(consumer.run(service.ready, stopping), name="consumer")
            await warm_rest_path(platform)  # while the child starts
            tasks.create_task(_pending_lists(service, stopping), name="local lists")
            api = serve_api(app, settings.api_host, settings.api_port, stopping)
            tasks.create_task(api, name="sessions api")
    return consumer.failed


async def _pending_lists(service: SessionsService, stopping: asyncio.Event) -> None:
    """The local lists' pending sends, once the child migrated (it is ready)."""
    if await all_set_unless([service.ready], stopping):
        await service.local_lists.run_pending(stopping)


async def run_consumer(control_fd: int) -> None:
    """The consumer of ``csms sessions`` in two processes (the child): everything the sessions
    service runs but its REST API, until SIGTERM or until the API process is gone."""
    settings = SessionsSettings()
    setup_process(settings, "csms-sessions-consumer")
    stopping = asyncio.Event()
    stop_on_signals(stopping)
    control = await ControlChannel.open(control_fd)
    try:
        async with (
            open_platform(settings, "csms-sessions-consumer", [SESSIONS_SCHEMA]) as platform,
            audited_commands(platform, "sessions") as commands,
            asyncio.TaskGroup() as tasks,
        ):
            service = sessions_service(settings, platform, commands)
            ready = asyncio.Event()
            tasks.create_task(control.watch_parent(stopping), name="api process")
            tasks.create_task(service.run(ready=ready, stopping=stopping), name="sessions")
            tasks.create_task(control.report_ready(ready, stopping), name="ready")
    finally:
        control.close()
