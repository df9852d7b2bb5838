"""The web app every service serves: its ``/api/v1`` routers behind bearer-token
authentication, problem+json errors, and the open operations routes.

``/healthz`` and ``/readyz`` (ready once the service consumes) and ``/openapi.json``
are open; ``/metrics`` needs a token with the viewer role, like any read.
"""

from collections.abc import Callable, Sequence

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from csms_api.audit.middleware import AuditMiddleware, service_of
from csms_api.auth import Authenticator, ViewerDep, install_auth
from csms_api.limits import RequestLimits, install_request_limits
from csms_api.metrics import OtherProcesses, merged
from csms_api.problems import Problem, ProblemRoute, install_problem_handlers
from csms_api.tracing import UnsampledContext, request_sampling

API_PREFIX = "/api/v1"


def create_service_app(
    title: str,
    *,
    routers: Sequence[APIRouter],
    authenticator: Authenticator | Callable[[], Authenticator],
    ready: Callable[[], bool],
    limits: RequestLimits | None = None,
    trace_sample_ratio: float | None = None,
    other_processes: OtherProcesses | None = None,
) -> FastAPI:
    """A service's app: ``routers`` under ``/api/v1``, health, readiness and metrics.

    ``authenticator`` may be a factory, called on the first request: an app built only
    for its OpenAPI document (with a placeholder service) never needs one. ``limits``
    (default: from ``CSMS_API_*``) bound its requests: body size and rate per client. Its
    requests' telemetry is recorded as the caller's ``traceparent`` says, or else for a share
    ``trace_sample_ratio`` (default: ``CSMS_TRACE_SAMPLE_RATIO``) of them (``csms_api.tracing``).
    With ``other_processes``, ``/metrics`` has theirs too, each sample labelled with its
    process (``csms_api.metrics``; this one is ``api``).
    """
    app = FastAPI(title=title, version="1.0.0", telemetry=request_sampling(trace_sample_ratio))
    app.router.route_class = ProblemRoute
    # The audit first: the last middleware added is the outermost, and the limits must be
    # outside it (a refused flood is not written to the audit trail call by call).
    app.add_middleware(AuditMiddleware, source=_service_name(routers))
    install_request_limits(app, limits)
    install_problem_handlers(app)
    install_auth(app, authenticator)
    # The outermost: an unrecorded request's trace is current for every other middleware.
    app.add_middleware(UnsampledContext)
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)

    def check_ready() -> dict[str, str]:
        if not ready():
            raise Problem(503, f"{title} is still starting", kind="starting")
        return {"status": "ok"}

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Ready once migrated and consuming (open)."""
        return check_ready()

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> dict[str, str]:
        """Ready once migrated and consuming (open)."""
        return check_ready()

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics(caller: ViewerDep) -> Response:
        """Prometheus metrics of the service's processes (a viewer's token, like any read)."""
        if other_processes is None:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
        theirs = await other_processes()
        text = merged({"api": generate_latest(), **theirs})
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return app


def _service_name(routers: Sequence[APIRouter]) -> str:
    """The service whose routes the app serves (the audit's ``source`` for the others, such
    as the API keys'): ``sessions`` for ``csms_sessions``' routes."""
    names = (service_of(route) for router in routers for route in router.routes)
    return next((name for name in names if name is not None), "api")
