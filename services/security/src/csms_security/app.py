"""The security service as a web app: REST routes, health, metrics.

- ``create_router(service)``: the ``/api/v1`` routes, for any host app (the embedded
  ``csms up`` mounts it); they answer errors as problem+json on their own.
- ``create_app(service)``: a complete app for a service the caller runs.
"""

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from csms_api.problems import Problem, ProblemRoute, install_problem_handlers
from csms_security.api.deps import bind_service
from csms_security.certificates.api import router as certificates_router
from csms_security.events.api import router as events_router
from csms_security.profiles.api import router as profiles_router
from csms_security.service import SecurityService

API_PREFIX = "/api/v1"


def create_router(service: SecurityService) -> APIRouter:
    """The service's REST routes (mount under ``/api/v1``)."""
    router = APIRouter(dependencies=[bind_service(service)], route_class=ProblemRoute)
    for routes in (certificates_router, events_router, profiles_router):
        router.include_router(routes)
    return router


def create_app(service: SecurityService) -> FastAPI:
    """The REST API of ``service``, with ``/healthz`` and ``/metrics``; errors as problem+json."""
    app = FastAPI(title="CSMS security", version="1.0.0")
    app.router.route_class = ProblemRoute
    install_problem_handlers(app)
    app.include_router(create_router(service), prefix=API_PREFIX)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Ready once the CA is loaded, migrated and consuming."""
        if not service.ready.is_set():
            raise Problem(503, "the security service is still starting", kind="starting")
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
