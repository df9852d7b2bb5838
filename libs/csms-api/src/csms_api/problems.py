"""Errors as RFC 9457 ``application/problem+json``, for every error a CSMS API returns.

``install_problem_handlers`` makes an app answer every error this way: a ``Problem``
a route raises, unknown routes, wrong methods, request validation errors, a
dependency outage (503 with Retry-After) and anything unexpected (500, logged).
Routes built with ``ProblemRoute`` turn a ``Problem`` and a validation error into
problem+json themselves, so they answer alike when mounted into another app.
Problem types are URNs: stable names, not (yet) documents to dereference.
"""

import logging
from collections.abc import Callable, Coroutine, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from csms_api.limits import install_request_limits
from csms_core.bus.runner import TRANSIENT_ERRORS

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "urn:csms:problem:"


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:csms:problem:station-offline",
                    "title": "Station offline",
                    "status": 409,
                    "detail": "no gateway holds a connection to CP-001",
                    "instance": "/api/v1/stations/CP-001/commands/reset",
                }
            ]
        },
    )

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class Problem(Exception):
    """Raise to answer with a problem; ``kind`` names it under PROBLEM_BASE; ``headers`` go
    on the response (``WWW-Authenticate``, ``Retry-After``)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self, request: Request) -> JSONResponse:
        response = problem_response(request, self.status, self.detail, kind=self.kind, **self.extra)
        response.headers.update(self.headers)
        return response


def problem_response(
    request: Request, status: int, detail: str | None, *, kind: str | None = None, **extra: Any
) -> JSONResponse:
    body = ProblemDetail(
        type=PROBLEM_BASE + kind if kind else "about:blank",
        title=kind.replace("-", " ").capitalize() if kind else HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        **extra,
    )
    return JSONResponse(
        jsonable_encoder(body, exclude_none=True), status_code=status, media_type=MEDIA_TYPE
    )


def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return problem_response(request, 422, detail, kind="invalid-request", errors=errors)


class ProblemRoute(APIRoute):
    """A route summarised by its docstring's first line that answers its errors as problems."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if kwargs.get("summary") is None and endpoint.__doc__:
            kwargs["summary"] = endpoint.__doc__.strip().splitlines()[0]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except Problem as exc:
                return exc.response(request)
            except RequestValidationError as exc:
                return invalid_request(request, exc)

        return handler


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json, and bound its requests (body size and
    rate per client: ``csms_api.limits``); every CSMS app calls this."""
    install_request_limits(app)

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response(request)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, TRANSIENT_ERRORS):
            logger.warning("dependency unavailable for %s: %r", request.url.path, exc)
            response = problem_response(
                request,
                503,
                "a dependency (database, Redis or Kafka) is unavailable; retry",
                kind="dependency-unavailable",
            )
            response.headers["Retry-After"] = "1"
            return response
        logger.exception("unexpected error on %s", request.url.path)
        return problem_response(request, 500, "unexpected error; it has been logged")

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = getattr(exc, "kind", None)  # e.g. limits.BodyTooLarge
        response = problem_response(request, exc.status_code, str(exc.detail), kind=kind)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_request(request, exc)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the problems a route may answer."""
    return {
        status: {
            "model": ProblemDetail,
            "content": {MEDIA_TYPE: {}},
            "description": HTTPStatus(status).phrase,
        }
        for status in statuses
    }
