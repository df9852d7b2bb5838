"""What every service replica with a REST API shares: its audited command client, and the
run of its consumer beside its API until SIGTERM."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

from fastapi import FastAPI

from csms_api.access import migrate_access
from csms_api.audit import AuditLog
from csms_cli.platform import Platform, open_platform, setup_process
from csms_cli.runtime import stop_on_signals
from csms_cli.serving import serve_api
from csms_core.db import session_factory, warm
from csms_core.router import CommandClient
from csms_core.settings import CommonSettings


@asynccontextmanager
async def audited_commands(platform: Platform, service: str) -> AsyncIterator[CommandClient]:
    """The service's command client; every command it sends is in the audit trail (the
    ``access`` schema, migrated here so that a service that serves no REST writes it too)."""
    await migrate_access(platform.engine)
    audit = AuditLog(session_factory(platform.engine), service)
    try:
        async with CommandClient(platform.router, service, audit=audit) as commands:
            yield commands
    finally:
        await audit.flush()  # before the engine closes


# What a REST process opens at start-up (``warm_rest_path``): each command request under way
# takes a Redis connection (the route lookup, then the XADD) and the reply reader holds one;
# an API key's first read and the audit's group commit take a database connection each.
WARM_REDIS_CONNECTIONS = 8
WARM_DATABASE_CONNECTIONS = 2


async def warm_rest_path(platform: Platform) -> None:
    """Open the connections a REST process's first requests would otherwise each open (a
    database connection to PostgreSQL takes milliseconds of both processes' CPU): the first
    second of a busy client was its slowest (issue 10, the command path)."""
    await asyncio.gather(
        platform.router.warm(WARM_REDIS_CONNECTIONS),
        warm(platform.engine, WARM_DATABASE_CONNECTIONS),
    )


class Service(Protocol):
    """What ``csms sessions`` / ``csms smartcharging`` run: a consumer service with a REST API."""

    async def run(self, *, ready: asyncio.Event | None = None, stopping: asyncio.Event) -> None: ...


ServiceFactory = Callable[[Platform, CommandClient], tuple[Service, FastAPI]]
S = TypeVar("S", bound=Service)


async def run_service(
    name: str,
    settings: CommonSettings,
    schema: str,
    api: tuple[str, int],
    build: ServiceFactory,
) -> None:
    """Open the platform, run the service and serve its API until SIGTERM."""
    setup_process(settings, f"csms-{name}")
    stopping = asyncio.Event()
    stop_on_signals(stopping)
    async with (
        open_platform(settings, f"csms-{name}", [schema]) as platform,
        audited_commands(platform, name) as commands,
        asyncio.TaskGroup() as tasks,
    ):
        service, app = build(platform, commands)
        await warm_rest_path(platform)
        tasks.create_task(service.run(stopping=stopping), name=name)
        tasks.create_task(serve_api(app, *api, stopping), name=f"{name} api")


async def run_replica(
    name: str,
    settings: CommonSettings,
    api: tuple[str, int],
    schema: str,
    service: Callable[..., S],
    create_app: Callable[[S], FastAPI],
) -> None:
    """``run_service`` of a service built as every consumer service is: its settings, then
    the platform's bus, router, engine and its audited command client."""

    def build(platform: Platform, commands: CommandClient) -> tuple[Service, FastAPI]:
        built = service(
            settings,
            bus=platform.bus,
            router=platform.router,
            commands=commands,
            engine=platform.engine,
        )
        return built, create_app(built)

    await run_service(name, settings, schema, api, build)
