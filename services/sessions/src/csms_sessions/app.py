"""The sessions service as a web app: REST routes, health, metrics, and the distributed runner.

- ``create_router(service)``: the ``/api/v1`` routes, for any host app (the
  embedded ``csms`` command mounts it and calls ``install_problem_handlers``).
- ``create_app(service)``: a complete app for a service the caller runs
  (``csms sessions`` serves it; the caller opens the clients and runs the service).
"""

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from csms_api.problems import Problem, install_problem_handlers
from csms_sessions.api.deps import bind_service
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import router as commands_router
from csms_sessions.configuration.api import router as configuration_router
from csms_sessions.datatransfer.api import router as datatransfer_router
from csms_sessions.local_lists.api import router as local_lists_router
from csms_sessions.remote.api import router as remote_router
from csms_sessions.reservations.api import router as reservations_router
from csms_sessions.service import SessionsService
from csms_sessions.stations.api import router as stations_router
from csms_sessions.tokens.api import router as tokens_router
from csms_sessions.tokens.cache import router as clear_cache_router
from csms_sessions.transactions.api import router as transactions_router

API_PREFIX = "/api/v1"


def create_router(service: SessionsService) -> APIRouter:
    """The service's REST routes (mount under ``/api/v1``)."""
    router = APIRouter(dependencies=[bind_service(service)])
    for routes in (
        stations_router,
        commands_router,
        tokens_router,
        remote_router,
        configuration_router,
        datatransfer_router,
        transactions_router,
        local_lists_router,
        reservations_router,
        clear_cache_router,
    ):
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
