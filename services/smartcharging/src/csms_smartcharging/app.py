"""The smart charging service as a web app: REST routes, health, metrics.

- ``create_router(service)``: the ``/api/v1`` routes, for any host app (the embedded
  ``csms up`` mounts it into the sessions app); they answer errors as problem+json
  on their own.
- ``create_app(service)``: a complete app for a service the caller runs.
"""

from fastapi import APIRouter, FastAPI

from csms_api.app import API_PREFIX, create_service_app
from csms_api.auth import Authenticator
from csms_api.problems import ProblemRoute
from csms_smartcharging.api.deps import bind_service
from csms_smartcharging.charging.api import router as charging_router
from csms_smartcharging.service import SmartChargingService
from csms_smartcharging.topology.api import router as topology_router

__all__ = ["API_PREFIX", "create_app", "create_router"]


def create_router(service: SmartChargingService) -> APIRouter:
    """The service's REST routes (mount under ``/api/v1``)."""
    router = APIRouter(dependencies=[bind_service(service)], route_class=ProblemRoute)
    for routes in (topology_router, charging_router):
        router.include_router(routes)
    return router


def create_app(service: SmartChargingService) -> FastAPI:
    """The REST API of ``service``, with health and metrics; errors as problem+json."""
    return create_service_app(
        "CSMS smart charging",
        routers=[create_router(service)],
        authenticator=lambda: Authenticator(service.settings, service.factory),
        ready=lambda: service.ready.is_set(),
    )
