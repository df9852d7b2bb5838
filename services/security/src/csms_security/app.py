"""The security service as a web app: REST routes behind bearer tokens, health, metrics.

- ``create_router(service)``: the ``/api/v1`` routes, for any host app (the embedded
  ``csms up`` mounts it); they answer errors as problem+json on their own.
- ``create_app(service)``: a complete app for a service the caller runs.
"""

from fastapi import APIRouter, FastAPI

from csms_api.app import API_PREFIX, create_service_app
from csms_api.auth import Authenticator
from csms_api.problems import ProblemRoute
from csms_security.api.deps import bind_service
from csms_security.certificates.api import router as certificates_router
from csms_security.events.api import router as events_router
from csms_security.profiles.api import router as profiles_router
from csms_security.service import SecurityService

__all__ = ["API_PREFIX", "create_app", "create_router"]


def create_router(service: SecurityService) -> APIRouter:
    """The service's REST routes (mount under ``/api/v1``)."""
    router = APIRouter(dependencies=[bind_service(service)], route_class=ProblemRoute)
    for routes in (certificates_router, events_router, profiles_router):
        router.include_router(routes)
    return router


def create_app(service: SecurityService) -> FastAPI:
    """The REST API of ``service``, with health, readiness and metrics."""
    return create_service_app(
        "CSMS security",
        routers=[create_router(service)],
        authenticator=lambda: Authenticator(service.settings, service.factory),
        ready=lambda: service.ready.is_set(),
    )
