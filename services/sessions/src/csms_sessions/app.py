"""The sessions service as a web app: REST routes, health, metrics, and the distributed runner.

- ``create_router(service)``: the ``/api/v1`` routes, for any host app (the
  embedded ``csms`` command mounts it and calls ``install_problem_handlers``).
- ``create_app(service)``: a complete app for a service the caller runs.
- ``create_distributed_app()``: a uvicorn factory (``uvicorn --factory
  csms_sessions.app:create_distributed_app``) whose lifespan opens Kafka,
  Redis and the database from ``CSMS_*`` settings and runs the service.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from csms_core.bus import Bus
from csms_core.bus.kafka import KafkaBus
from csms_core.bus.memory import InMemoryBus
from csms_core.db import create_engine
from csms_core.identity import SCHEMA as IDENTITY_SCHEMA
from csms_core.router import CommandClient, Router
from csms_core.router.memory import InMemoryRouter
from csms_core.router.redis import RedisRouter
from csms_core.telemetry import setup_logging, setup_tracing
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import Mount

from csms_sessions.api.deps import bind_service
from csms_sessions.api.problems import Problem, install_problem_handlers
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import router as commands_router
from csms_sessions.db import SCHEMA
from csms_sessions.service import SessionsService
from csms_sessions.settings import SessionsSettings
from csms_sessions.stations.api import router as stations_router
from csms_sessions.tokens.api import router as tokens_router

API_PREFIX = "/api/v1"


def create_router(service: SessionsService) -> APIRouter:
    """The service's REST routes (mount under ``/api/v1``)."""
    router = APIRouter(dependencies=[bind_service(service)])
    for routes in (stations_router, commands_router, tokens_router):
        router.include_router(routes)
    return router


def create_app(service: SessionsService) -> FastAPI:
    """The REST API of ``service``, with ``/healthz`` and ``/metrics``; errors as problem+json."""
    app = FastAPI(title="CSMS sessions", version="1.0.0")
    app.router.route_class = DocumentedRoute
    install_problem_handlers(app)
    app.include_router(create_router(service), prefix=API_PREFIX)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Ready once migrated and consuming."""
        if not service.ready.is_set():
            raise Problem(503, "the sessions service is still starting", kind="starting")
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def create_distributed_app(settings: SessionsSettings | None = None) -> FastAPI:
    """An app whose lifespan builds, runs and closes the whole service (a uvicorn factory)."""
    settings = settings or SessionsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_logging(settings.log_level, json_lines=settings.log_json)
        setup_tracing("csms-sessions")
        stopping = asyncio.Event()
        async with AsyncExitStack() as stack:
            service = await _open_service(settings, stack)
            app.router.routes.append(Mount("/", create_app(service)))
            async with asyncio.TaskGroup() as tasks:
                # A failing start cancels this body through the task group.
                tasks.create_task(service.run(stopping=stopping), name="sessions")
                await service.ready.wait()
                try:
                    yield
                finally:
                    stopping.set()

    # The service's own app (docs included) is mounted once the lifespan has built it.
    return FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)


async def _open_service(settings: SessionsSettings, stack: AsyncExitStack) -> SessionsService:
    """Open the clients (closed by ``stack`` in reverse order) and build the service on them."""
    bus: Bus = (
        KafkaBus(settings.kafka_bootstrap, client_id="csms-sessions")
        if settings.kafka_bootstrap
        else InMemoryBus()
    )
    router: Router = RedisRouter(settings.redis_url) if settings.redis_url else InMemoryRouter()
    engine = create_engine(settings.database_url, schemas=(SCHEMA, IDENTITY_SCHEMA))
    stack.push_async_callback(engine.dispose)
    await stack.enter_async_context(bus)
    await stack.enter_async_context(router)
    commands = await stack.enter_async_context(CommandClient(router, "sessions"))
    return SessionsService(settings, bus=bus, router=router, commands=commands, engine=engine)
