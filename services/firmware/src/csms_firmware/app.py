"""The firmware service as a web app: REST routes, station file transfer, health, metrics.

- ``create_router(service)``: the ``/api/v1/firmware`` routes, for any host app.
- ``create_file_router(service)``: ``/firmware/files`` and ``/firmware/uploads``, where
  stations fetch images and upload logs (authorised by the URL's token, not a bearer).
- ``create_app(service)``: a complete app for a service the caller runs.
"""

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from csms_api.problems import Problem, ProblemRoute, install_problem_handlers
from csms_firmware.api.deps import bind_service
from csms_firmware.campaigns.api import router as campaigns_router
from csms_firmware.catalogue.api import router as catalogue_router
from csms_firmware.catalogue.files import router as files_router
from csms_firmware.catalogue.publish import router as publish_router
from csms_firmware.logs.api import router as logs_router
from csms_firmware.logs.uploads import router as uploads_router
from csms_firmware.service import FirmwareService
from csms_firmware.stations.api import router as stations_router

API_PREFIX = "/api/v1"


def create_router(service: FirmwareService) -> APIRouter:
    """The service's REST routes (mount under ``/api/v1``)."""
    router = APIRouter(dependencies=[bind_service(service)], route_class=ProblemRoute)
    for routes in (
        catalogue_router,
        campaigns_router,
        stations_router,
        publish_router,
        logs_router,
    ):
        router.include_router(routes)
    return router


def create_file_router(service: FirmwareService) -> APIRouter:
    """Where stations download images and upload logs (mount at the root)."""
    router = APIRouter(dependencies=[bind_service(service)], route_class=ProblemRoute)
    router.include_router(files_router)
    router.include_router(uploads_router)
    return router


def create_app(service: FirmwareService) -> FastAPI:
    """The REST API of ``service`` and its file endpoints, ``/healthz`` and ``/metrics``."""
    app = FastAPI(title="CSMS firmware and diagnostics", version="1.0.0")
    app.router.route_class = ProblemRoute
    install_problem_handlers(app)
    app.include_router(create_router(service), prefix=API_PREFIX)
    app.include_router(create_file_router(service))

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Ready once migrated and consuming."""
        if not service.ready.is_set():
            raise Problem(503, "the firmware service is still starting", kind="starting")
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
