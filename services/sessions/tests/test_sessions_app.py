"""The distributed-mode app: its lifespan builds, runs and stops the whole service."""

from pathlib import Path

import httpx
from csms_sessions.app import create_distributed_app
from csms_sessions.testing import assert_problem, settings_for_tests


async def test_distributed_app_serves_once_started(tmp_path: Path) -> None:
    # Without Kafka and Redis settings it runs on the embedded bus and router.
    app = create_distributed_app(settings_for_tests(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://csms") as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/api/v1/stations")).json()["total"] == 0
            assert_problem(await client.get("/nowhere"), 404)
            assert (await client.get("/openapi.json")).status_code == 200
