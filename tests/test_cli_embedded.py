"""``csms up``: every component in one process on the embedded default, as a newcomer runs it."""

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.openapi.utils import get_openapi

from csms_cli.embedded import create_embedded_app, run_embedded, whole_api_openapi
from tests import stations
from tests.cluster import CSMS, free_port
from tests.deploy_routing import OPENAPI_FILE
from tests.waiting import eventually


@asynccontextmanager
async def embedded(
    tmp_path: Path, demo_stations: int = 0
) -> AsyncIterator[tuple[str, str, dict[str, str]]]:
    """``csms up`` in this process: its OCPP URL, REST URL and admin key header."""
    ocpp_port, api_port = free_port(), free_port()
    ready, stopping = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(
        run_embedded(
            host="127.0.0.1",
            ocpp_port=ocpp_port,
            api_port=api_port,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}",
            unknown_station_policy="accept",
            demo_stations=demo_stations,
            ready=ready,
            stopping=stopping,
        )
    )
    await asyncio.wait_for(ready.wait(), 30)
    try:
        admin_key = (tmp_path / "admin.key").read_text().strip()
        headers = {"Authorization": f"Bearer {admin_key}"}
        yield f"ws://127.0.0.1:{ocpp_port}", f"http://127.0.0.1:{api_port}", headers
    finally:
        stopping.set()
        await asyncio.wait_for(running, 30)


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_tc_b_01_up_accepts_unknown_station_and_commands_reach_it(
    tmp_path: Path, version: str
) -> None:
    async with (
        embedded(tmp_path) as (ocpp_url, api_url, admin),
        stations.station(ocpp_url, "CP-LAPTOP", version) as station,
        httpx.AsyncClient(base_url=api_url, timeout=30, headers=admin) as client,
    ):
        boot = await station.call(stations.boot_call(version))
        assert boot.status == "Accepted"
        response = await client.post(
            "/api/v1/stations/CP-LAPTOP/commands/change-availability",
            json={"operative": False, "evse_id": 1, "connector_id": 1},
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Accepted"
        expected = (
            {"connector_id": 1, "type": "Inoperative"}
            if version == "1.6"
            else {"operational_status": "Inoperative", "evse": {"id": 1, "connector_id": 1}}
        )
        assert station.received == [("ChangeAvailability", expected)]


async def test_up_serves_health_openapi_and_problem_json(tmp_path: Path) -> None:
    async with (
        embedded(tmp_path) as (_, api_url, admin),
        httpx.AsyncClient(base_url=api_url) as client,
    ):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ok"}
        openapi = (await client.get("/openapi.json")).json()
        assert "/api/v1/stations/{station_id}/commands/reset" in openapi["paths"]
        missing = await client.get("/api/v1/nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        anonymous = await client.get("/api/v1/stations")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        bad_body = await client.put(
            "/api/v1/stations/CP-1", json={"password": "short"}, headers=admin
        )
        assert bad_body.status_code == 422
        assert bad_body.json()["status"] == 422


async def test_up_runs_the_firmware_service(tmp_path: Path) -> None:
    image = b"firmware image" * 100
    async with (
        embedded(tmp_path) as (ocpp_url, api_url, admin),
        stations.station(ocpp_url, "CP-FW", "2.0.1") as station,
        httpx.AsyncClient(base_url=f"{api_url}/api/v1", timeout=30, headers=admin) as client,
    ):
        assert (await station.call(stations.boot_call("2.0.1"))).status == "Accepted"
        uploaded = await client.post(
            "/firmware/images",
            data={
                "vendor": "TestVendor",
                "models": "TestModel",
                "version": "9.9",
                "sha256": hashlib.sha256(image).hexdigest(),
            },
            files={"file": ("fw.bin", image)},
        )
        assert uploaded.status_code == 201, uploaded.text

        async def known() -> bool:
            return (await client.get("/firmware/stations/CP-FW")).status_code == 200

        await eventually(known)
        status = await client.post("/firmware/stations/CP-FW/firmware-status")
        assert status.status_code == 200, status.text
        assert ("TriggerMessage", {"requested_message": "FirmwareStatusNotification"}) in (
            station.received
        )


def test_help_names_every_component() -> None:
    printed = subprocess.run(
        [str(CSMS), "--help"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    for command in ("up", "gateway", "sessions", "smartcharging", "firmware", "simulate"):
        assert f" {command} " in printed
    assert sys.executable


async def test_up_demo_fleet_comes_alive(tmp_path: Path) -> None:
    async with (
        embedded(tmp_path, demo_stations=5) as (_, api_url, admin),
        httpx.AsyncClient(base_url=f"{api_url}/api/v1", headers=admin) as client,
    ):

        async def all_booted() -> list[dict[str, object]] | None:
            items: list[dict[str, object]] = (await client.get("/stations")).json()["items"]
            booted = [s for s in items if s["online"] and s["boot_status"] == "Accepted"]
            return items if len(booted) == 5 else None

        stations_seen = await eventually(all_booted, timeout_s=30)
        assert sorted(str(s["station_id"]) for s in stations_seen) == [
            f"DEMO{n:05d}" for n in range(1, 6)
        ]
        token = await client.get("/id-tokens/SIMTOKEN1")
        assert token.json()["status"] == "Accepted"


async def test_up_serves_the_openapi_document_of_the_whole_api(tmp_path: Path) -> None:
    """The same document as docs/openapi.json and the distributed mode's proxy."""
    async with (
        embedded(tmp_path) as (_, api_url, _),
        httpx.AsyncClient(base_url=api_url) as client,
    ):
        served = (await client.get("/openapi.json")).json()
        assert served == json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
        assert "/api/v1/sites/{site_id}" in served["paths"]
        docs = await client.get("/docs")
        assert "/openapi.json" in docs.text


def test_the_embedded_app_serves_every_operation_of_the_whole_api() -> None:
    """A service whose routes `csms up` forgot to mount would be documented and 404."""
    placeholder: Any = object()
    app = create_embedded_app(placeholder, placeholder, placeholder, placeholder, placeholder)
    # What FastAPI itself would document for the routes the app really mounts.
    own = get_openapi(title=app.title, version=app.version, routes=app.routes)["paths"]
    mounted = {  # the API and its public paths (receipts, station files): not /healthz
        (method, path)
        for path, item in own.items()
        if path not in {"/healthz", "/readyz", "/metrics"}
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    documented = {
        (method, path)
        for path, item in whole_api_openapi()["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    assert mounted == documented


async def test_up_keeps_its_admin_key_private_and_across_restarts(tmp_path: Path) -> None:
    async with embedded(tmp_path) as (_, api_url, admin):
        assert (tmp_path / "admin.key").stat().st_mode & 0o777 == 0o600
        async with httpx.AsyncClient(base_url=api_url, headers=admin) as client:
            keys = (await client.get("/api/v1/api-keys")).json()
    assert [key["role"] for key in keys["items"]] == ["admin"]
    async with embedded(tmp_path) as (_, _, admin_again):
        assert admin_again == admin  # the same key: it still works, so it is kept


def test_api_keys_create_prints_a_key_once_that_list_never_shows(tmp_path: Path) -> None:
    data_dir = ["--data-dir", str(tmp_path)]
    created = subprocess.run(
        [
            str(CSMS),
            "api-keys",
            "create",
            "--role",
            "operator",
            "--sites",
            "depot-1,depot-2",
            "--expires",
            "30d",
            "--name",
            "depot app",
            *data_dir,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    token = created.splitlines()[0]
    assert token.startswith("csms_")
    listed = subprocess.run(
        [str(CSMS), "api-keys", "list", *data_dir],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    assert "operator" in listed
    assert "sites=depot-1,depot-2" in listed
    # csms_<key id>_<secret>: the secret is URL-safe base64 and may itself hold "_"
    assert token.split("_", 2)[2] not in listed
