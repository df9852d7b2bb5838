"""The firmware service as a web app: REST routes, station file transfer, health, metrics.

- ``create_router(service)``: the ``/api/v1/firmware`` routes, for any host app; each
  declares its role (reads ``viewer``, writes ``admin``).
- ``create_file_router(service)``: ``/firmware/files`` and ``/firmware/uploads``, where
  stations fetch images and upload logs (authorised by the URL's token, not a bearer).
- ``create_app(service)``: a complete app for a service the caller runs.
"""

from fastapi import APIRouter, FastAPI

from csms_api.app import API_PREFIX, create_service_app
from csms_api.auth import Authenticator
from csms_api.problems import ProblemRoute
from csms_firmware.api.deps import bind_service
from csms_firmware.campaigns.api import router as campaigns_router
from csms_firmware.catalogue.api import router as catalogue_router
from csms_firmware.catalogue.files import router as files_router
from csms_firmware.catalogue.publish import router as publish_router
from csms_firmware.logs.api import router as logs_router
from csms_firmware.logs.uploads import router as uploads_router
from csms_firmware.service import FirmwareService
from csms_firmware.stations.api import router as stations_router

__all__ = ["API_PREFIX", "create_app", "create_file_router", "create_router"]


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
    """The REST API of ``service`` behind bearer tokens, its station file endpoints,
    health, readiness and metrics."""
    app = create_service_app(
        "CSMS firmware and diagnostics",
        routers=[create_router(service)],
        authenticator=lambda: Authenticator(service.settings, service.factory),
        ready=lambda: service.ready.is_set(),
    )
    app.include_router(create_file_router(service))
    return app
