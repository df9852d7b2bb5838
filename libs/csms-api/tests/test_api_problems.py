"""Errors nobody planned for are still problem+json: 503 for a dependency outage, 500 otherwise."""

import httpx
import redis.exceptions
from fastapi import FastAPI

from csms_api.problems import install_problem_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/redis-down")
    async def redis_down() -> None:
        raise redis.exceptions.ConnectionError("Connection refused")

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("boom")

    return app


async def test_dependency_outage_is_503_problem_with_retry_after() -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://csms") as client:
        response = await client.get("/redis-down")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"].endswith("dependency-unavailable")


async def test_unexpected_error_is_500_problem_without_internals() -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://csms") as client:
        response = await client.get("/bug")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "boom" not in response.text
