"""The billing service as a web app: REST routes, health, metrics.

- ``create_router(service)``: the ``/api/v1`` routes, for any host app (``csms up``
  mounts it next to the others); they answer errors as problem+json on their own.
- ``create_app(service)``: a complete app for a service the caller runs.
"""

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from csms_api.problems import Problem, ProblemRoute, install_problem_handlers
from csms_billing.api.deps import bind_service
from csms_billing.cdrs.api import router as cdrs_router
from csms_billing.costs.api import router as costs_router
from csms_billing.payments.api import router as payments_router
from csms_billing.service import BillingService
from csms_billing.tariffs.api import router as tariffs_router
from csms_billing.tariffs.stations_api import router as station_tariffs_router

API_PREFIX = "/api/v1"


def create_router(service: BillingService) -> APIRouter:
    """The service's REST routes (mount under ``/api/v1``)."""
    router = APIRouter(dependencies=[bind_service(service)], route_class=ProblemRoute)
    for routes in (
        tariffs_router,
        station_tariffs_router,
        cdrs_router,
        costs_router,
        payments_router,
    ):
        router.include_router(routes)
    return router


def create_app(service: BillingService) -> FastAPI:
    """The REST API of ``service``, with ``/healthz`` and ``/metrics``; errors as problem+json."""
    app = FastAPI(title="CSMS billing", version="1.0.0")
    app.router.route_class = ProblemRoute
    install_problem_handlers(app)
    app.include_router(create_router(service), prefix=API_PREFIX)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Ready once migrated and consuming."""
        if not service.ready.is_set():
            raise Problem(503, "the billing service is still starting", kind="starting")
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
