"""The billing service as a web app: REST routes behind bearer tokens, health, metrics.

- ``create_router(service)``: the ``/api/v1`` routes, for any host app (``csms up``
  mounts it next to the others); they answer errors as problem+json on their own.
- ``create_public_router(service)``: what is served without a bearer token, outside
  ``/api/v1``: the payment provider's webhook (authenticated by the provider's
  signature) and drivers' receipts (their unguessable id is the credential).
- ``create_app(service)``: a complete app for a service the caller runs.
"""

from fastapi import APIRouter, FastAPI

from csms_api.app import create_service_app
from csms_api.auth import Authenticator
from csms_api.problems import ProblemRoute
from csms_billing.api.deps import bind_service
from csms_billing.cdrs.api import router as cdrs_router
from csms_billing.costs.api import router as costs_router
from csms_billing.payments.api import public_router as payments_public_router
from csms_billing.payments.api import router as payments_router
from csms_billing.service import BillingService
from csms_billing.tariffs.api import router as tariffs_router
from csms_billing.tariffs.stations_api import router as station_tariffs_router


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


def create_public_router(service: BillingService) -> APIRouter:
    """The provider's webhook and the receipts (mount at the root, not under ``/api/v1``)."""
    router = APIRouter(dependencies=[bind_service(service)], route_class=ProblemRoute)
    router.include_router(payments_public_router)
    return router


def create_app(service: BillingService) -> FastAPI:
    """The REST API of ``service``, with health and metrics; errors as problem+json."""
    app = create_service_app(
        "CSMS billing",
        routers=[create_router(service)],
        authenticator=lambda: Authenticator(service.settings, service.factory),
        ready=lambda: service.ready.is_set(),
    )
    app.include_router(create_public_router(service))
    return app
