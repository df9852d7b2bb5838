"""Errors as RFC 9457 ``application/problem+json``, for every error the API returns.

Installed on the app (``install_problem_handlers``) so that unknown routes,
wrong methods and request validation errors take the same shape as ours.
"""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from csms_core.bus.runner import TRANSIENT_ERRORS

MEDIA_TYPE = "application/problem+json"
# Problem types are URNs: stable names, not (yet) documents to dereference.
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
    """Raise to answer with a problem; ``kind`` names it under PROBLEM_BASE."""

    def __init__(self, status: int, detail: str, *, kind: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.extra = extra


logger = logging.getLogger(__name__)


def problem_response(
    request: Request, status: int, detail: str | None, *, kind: str | None = None, **extra: Any
) -> JSONResponse:
    title = HTTPStatus(status).phrase
    body = ProblemDetail(
        type=PROBLEM_BASE + kind if kind else "about:blank",
        title=kind.replace("-", " ").capitalize() if kind else title,
        status=status,
        detail=detail,
        instance=request.url.path,
        **extra,
    )
    return JSONResponse(
        jsonable_encoder(body, exclude_none=True), status_code=status, media_type=MEDIA_TYPE
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, kind=exc.kind, **exc.extra)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        response = problem_response(request, exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

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

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem_response(request, 422, detail, kind="invalid-request", errors=errors)


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
