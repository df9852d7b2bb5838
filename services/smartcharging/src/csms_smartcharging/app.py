"""The smart charging service as a web app: REST routes, health, metrics.

- ``create_router(service)``: the ``/api/v1`` routes, for any host app (the embedded
  ``csms up`` mounts it into the sessions app); they answer errors as problem+json
  on their own.
- ``create_app(service)``: a complete app for a service the caller runs.
"""

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from csms_api.problems import Problem, ProblemRoute, install_problem_handlers
from csms_smartcharging.api.deps import bind_service
from csms_smartcharging.charging.api import router as charging_router
from csms_smartcharging.service import SmartChargingService
from csms_smartcharging.topology.api import router as topology_router

API_PREFIX = "/api/v1"


def create_router(service: SmartChargingService) -> APIRouter:
    """The service's REST routes (mount under ``/api/v1``)."""
    router = APIRouter(dependencies=[bind_service(service)], route_class=ProblemRoute)
    for routes in (topology_router, charging_router):
        router.include_router(routes)
    return router


def create_app(service: SmartChargingService) -> FastAPI:
    """The REST API of ``service``, with ``/healthz`` and ``/metrics``; errors as problem+json."""
    app = FastAPI(title="CSMS smart charging", version="1.0.0")
    app.router.route_class = ProblemRoute
    install_problem_handlers(app)
    app.include_router(create_router(service), prefix=API_PREFIX)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Ready once migrated and consuming."""
        if not service.ready.is_set():
            raise Problem(503, "the smart charging service is still starting", kind="starting")
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
