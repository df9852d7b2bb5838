"""The sessions service as a web app: REST routes, health, metrics, and the distributed runner.

- ``create_router(service)``: the ``/api/v1`` routes, for any host app (the
  embedded ``csms`` command mounts it and calls ``install_problem_handlers``).
- ``create_app(service)``: a complete app for a service the caller runs
  (``csms sessions`` serves it; the caller opens the clients and runs the service).
  It also serves the API keys and the audit trail (``/api/v1/api-keys``,
  ``/api/v1/audit``, from ``libs``).
"""

from fastapi import APIRouter, FastAPI

from csms_api.access.api import router as api_keys_router
from csms_api.app import API_PREFIX, create_service_app
from csms_api.audit.api import router as audit_router
from csms_api.auth import Authenticator
from csms_api.metrics import OtherProcesses
from csms_sessions.api.deps import bind_service
from csms_sessions.commands.api import router as commands_router
from csms_sessions.configuration.api import router as configuration_router
from csms_sessions.customers.api import router as customers_router
from csms_sessions.datatransfer.api import router as datatransfer_router
from csms_sessions.local_lists.api import router as local_lists_router
from csms_sessions.monitoring.api import events_router as station_events_router
from csms_sessions.monitoring.api import router as monitoring_router
from csms_sessions.remote.api import router as remote_router
from csms_sessions.reservations.api import router as reservations_router
from csms_sessions.service import SessionsService
from csms_sessions.stations.api import router as stations_router
from csms_sessions.tokens.api import router as tokens_router
from csms_sessions.tokens.cache import router as clear_cache_router
from csms_sessions.transactions.api import router as transactions_router

__all__ = ["API_PREFIX", "create_app", "create_router"]


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
        monitoring_router,
        station_events_router,
        customers_router,
    ):
        router.include_router(routes)
    return router


def create_app(service: SessionsService, other_processes: OtherProcesses | None = None) -> FastAPI:
    """The REST API of ``service``, of API keys and of the audit trail, with health and
    metrics (``other_processes``: those of its consumer's process too)."""
    return create_service_app(
        "CSMS sessions",
        routers=[create_router(service), api_keys_router, audit_router],
        authenticator=lambda: Authenticator(service.settings, service.factory),
        ready=lambda: service.ready.is_set(),
        other_processes=other_processes,
    )
