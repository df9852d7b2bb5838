"""``csms up``: every component in one process on the embedded default (in-process bus
and router, SQLite), and its REST API of every service's routes."""

import asyncio
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from csms_billing.app import create_public_router as create_billing_public_router
from csms_billing.app import create_router as create_billing_router
from csms_billing.db import SCHEMA as BILLING_SCHEMA
from csms_billing.service import BillingService
from csms_billing.settings import BillingSettings
from csms_cli.api_keys import ADMIN_KEY_FILE, ensure_admin_key
from csms_cli.banner import StartupInfo, announce, startup_info
from csms_cli.openapi import merged_openapi
from csms_cli.platform import open_platform, setup_process
from csms_cli.replicas.service import audited_commands
from csms_cli.replicas.sessions import sessions_service
from csms_cli.routing import API_SERVICES
from csms_cli.runtime import all_set_unless, stop_on_signals
from csms_cli.serving import serve_api
from csms_core.db import session_factory
from csms_core.identity import IdentityStore
from csms_core.settings import Environment
from csms_firmware.app import create_file_router as create_firmware_file_router
from csms_firmware.app import create_router as create_firmware_router
from csms_firmware.db import SCHEMA as FIRMWARE_SCHEMA
from csms_firmware.service import FirmwareService
from csms_firmware.settings import FirmwareSettings
from csms_gateway import Gateway, GatewaySettings
from csms_security.app import create_router as create_security_router
from csms_security.db import SCHEMA as SECURITY_SCHEMA
from csms_security.service import SecurityService
from csms_security.settings import SecuritySettings
from csms_sessions.app import create_app
from csms_sessions.db import SCHEMA as SESSIONS_SCHEMA
from csms_sessions.service import SessionsService
from csms_sessions.settings import SessionsSettings, UnknownStationPolicy
from csms_simulator import SimulationConfig, run_fleet
from csms_smartcharging.app import create_router as create_smartcharging_router
from csms_smartcharging.db import SCHEMA as SMARTCHARGING_SCHEMA
from csms_smartcharging.service import SmartChargingService
from csms_smartcharging.settings import SmartChargingSettings

logger = logging.getLogger(__name__)


async def run_embedded(
    *,
    host: str,
    ocpp_port: int,
    api_port: int,
    database_url: str,
    unknown_station_policy: UnknownStationPolicy,
    admin_key_file: Path | None = None,
    demo_stations: int = 0,
    ready: asyncio.Event | None = None,
    stopping: asyncio.Event | None = None,
    on_up: Callable[[StartupInfo], None] | None = None,
) -> None:
    """``csms up``: every component in this process on the in-process bus and router.

    With ``demo_stations``, a virtual fleet (the simulator) connects to it as well, so a
    newcomer sees stations boot, sessions run and energy flow in the REST API. Once up,
    it says where everything is (``announce``: a banner on a terminal), or hands that
    to ``on_up``. The REST API's admin key is kept in ``admin_key_file`` (default:
    ``admin.key`` next to the SQLite database), created on the first start.
    """
    key_file = admin_key_file or _database_dir(database_url) / ADMIN_KEY_FILE
    # Explicit values win over CSMS_* variables: `csms up` is always embedded.
    gateway_settings = GatewaySettings(
        kafka_bootstrap=None,
        redis_url=None,
        database_url=database_url,
        environment=Environment.DEVELOPMENT,
        ocpp_host=host,
        ocpp_port=ocpp_port,
        unknown_station_policy=unknown_station_policy,
    )
    sessions_settings = SessionsSettings(
        kafka_bootstrap=None,
        redis_url=None,
        database_url=database_url,
        environment=Environment.DEVELOPMENT,
        api_host=host,
        api_port=api_port,
        unknown_station_policy=unknown_station_policy,
    )
    json_logs = True
    if stopping is None:
        json_logs = setup_process(sessions_settings, "csms")
        stopping = asyncio.Event()
        stop_on_signals(stopping)
    security_settings = SecuritySettings(
        kafka_bootstrap=None,
        redis_url=None,
        database_url=database_url,
        environment=Environment.DEVELOPMENT,
        ca_dir=_data_dir(database_url) / "ca",
    )
    if gateway_settings.tls and gateway_settings.tls_client_ca_file is None:
        # Profile 3 with the certificates the security service issues: trust its CA.
        gateway_settings = gateway_settings.model_copy(
            update={"tls_client_ca_file": security_settings.ca_dir / "ca.pem"}
        )
    async with (
        open_platform(
            sessions_settings,
            "csms",
            [
                SESSIONS_SCHEMA,
                SMARTCHARGING_SCHEMA,
                SECURITY_SCHEMA,
                FIRMWARE_SCHEMA,
                BILLING_SCHEMA,
            ],
        ) as platform,
        audited_commands(platform, "sessions") as commands,
        audited_commands(platform, "smartcharging") as smartcharging_commands,
        audited_commands(platform, "security") as security_commands,
        audited_commands(platform, "firmware") as firmware_commands,
        audited_commands(platform, "billing") as billing_commands,
        SecurityService(
            security_settings,
            bus=platform.bus,
            router=platform.router,
            commands=security_commands,
            engine=platform.engine,
        ) as security,
        asyncio.TaskGroup() as tasks,
    ):
        service = sessions_service(sessions_settings, platform, commands)
        sessions_ready, gateway_ready = asyncio.Event(), asyncio.Event()
        tasks.create_task(service.run(ready=sessions_ready, stopping=stopping), name="sessions")
        await sessions_ready.wait()  # migrations done before the gateway reads identities
        # The security service migrates the identity schema too: one after the other.
        security_ready = asyncio.Event()
        tasks.create_task(security.run(ready=security_ready, stopping=stopping), name="security")
        if not await all_set_unless([security_ready], stopping):
            return  # asked to stop while starting
        admin_key = await ensure_admin_key(platform.engine, key_file)
        gateway = Gateway(
            gateway_settings,
            platform.bus,
            platform.router,
            IdentityStore(session_factory(platform.engine)),
        )
        tasks.create_task(gateway.run(ready=gateway_ready, stopping=stopping), name="gateway")
        smartcharging = SmartChargingService(
            SmartChargingSettings(
                kafka_bootstrap=None,
                redis_url=None,
                database_url=database_url,
                environment=Environment.DEVELOPMENT,
            ),
            bus=platform.bus,
            router=platform.router,
            commands=smartcharging_commands,
            engine=platform.engine,
        )
        smartcharging_ready, api_listening = asyncio.Event(), asyncio.Event()
        tasks.create_task(
            smartcharging.run(ready=smartcharging_ready, stopping=stopping), name="smartcharging"
        )
        # Alembic runs one migration at a time in a process (its context is global).
        if not await all_set_unless([smartcharging_ready], stopping):
            return
        firmware = FirmwareService(
            FirmwareSettings(
                kafka_bootstrap=None,
                redis_url=None,
                database_url=database_url,
                environment=Environment.DEVELOPMENT,
                store_dir=_data_dir(database_url) / "firmware",
                public_url=f"http://{host}:{api_port}",
            ),
            bus=platform.bus,
            router=platform.router,
            commands=firmware_commands,
            engine=platform.engine,
        )
        firmware_ready = asyncio.Event()
        tasks.create_task(firmware.run(ready=firmware_ready, stopping=stopping), name="firmware")
        if not await all_set_unless([firmware_ready], stopping):
            return
        billing = BillingService(
            BillingSettings(
                kafka_bootstrap=None,
                redis_url=None,
                database_url=database_url,
                environment=Environment.DEVELOPMENT,
            ),
            bus=platform.bus,
            router=platform.router,
            commands=billing_commands,
            engine=platform.engine,
        )
        billing_ready = asyncio.Event()
        tasks.create_task(billing.run(ready=billing_ready, stopping=stopping), name="billing")
        app = create_embedded_app(service, smartcharging, security, firmware, billing)
        tasks.create_task(
            serve_api(app, host, api_port, stopping, listening=api_listening), name="api"
        )
        # Up means every part is serving: the banner ends the start-up, it does not interrupt it.
        parts = [gateway_ready, smartcharging_ready, firmware_ready, billing_ready, api_listening]
        if not await all_set_unless(parts, stopping):
            return  # asked to stop while starting
        info = startup_info(
            host=host,
            ocpp_port=gateway.port or ocpp_port,  # set once the gateway listens
            api_port=api_port,
            tls=gateway_settings.tls,
            database_url=database_url,
            unknown_stations=unknown_station_policy,
            demo_stations=demo_stations,
            admin_key_file=key_file,
        )
        if demo_stations:
            tasks.create_task(
                run_demo_fleet(
                    f"ws://{host}:{gateway.port}/ocpp",
                    api_port,
                    demo_stations,
                    stopping,
                    admin_key,
                ),
                name="demo fleet",
            )
        if on_up is not None:
            on_up(info)
        else:
            announce(info, json_lines=json_logs)
        if ready is not None:
            ready.set()


def _data_dir(database_url: str) -> Path:
    """Where the embedded database file lives (its CA goes next to it)."""
    database = make_url(database_url).database or ""
    return Path(database).parent if database not in ("", ":memory:") else Path("csms-data")


def create_embedded_app(
    sessions: SessionsService,
    smartcharging: SmartChargingService,
    security: SecurityService,
    firmware: FirmwareService,
    billing: BillingService,
) -> FastAPI:
    """The REST API of ``csms up``: every service's routes in one app.

    ``/openapi.json`` is the merged document of the whole API (the one published as
    docs/openapi.json and served by the distributed mode's proxy).
    """
    app = create_app(sessions)
    app.title = "CSMS"
    app.include_router(create_smartcharging_router(smartcharging), prefix="/api/v1")
    app.include_router(create_security_router(security), prefix="/api/v1")
    app.include_router(create_firmware_router(firmware), prefix="/api/v1")
    app.include_router(create_billing_router(billing), prefix="/api/v1")
    # Where stations fetch images and upload logs (their URLs carry the credential).
    app.include_router(create_firmware_file_router(firmware))
    # The payment provider's webhook (signed) and drivers' receipts: no bearer tokens.
    app.include_router(create_billing_public_router(billing))
    # FastAPI documents what this app mounts; the merged document is the same routes with
    # each operation's service named, and built only when asked for.
    app.openapi = whole_api_openapi  # type: ignore[method-assign]
    return app


@functools.cache
def whole_api_openapi() -> dict[str, Any]:
    """The merged OpenAPI document of every service in the routing table."""
    return merged_openapi(API_SERVICES)


def _database_dir(database_url: str) -> Path:
    database = make_url(database_url).database
    return Path(database).parent if database and database != ":memory:" else Path()


async def run_demo_fleet(
    ocpp_url: str, api_port: int, count: int, stopping: asyncio.Event, api_key: str
) -> None:
    """A virtual fleet for ``csms up --demo``: its tokens registered, time sped up 60 times."""
    config = SimulationConfig(
        url=ocpp_url, count=count, id_prefix="DEMO", speed=60.0, arrival_mean_s=600.0
    )
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{api_port}/api/v1",
        headers={"Authorization": f"Bearer {api_key}"},
    ) as api:
        for token in config.id_tokens:
            response = await api.put(
                f"/id-tokens/{token}", json={"type": "ISO14443", "status": "Accepted"}
            )
            response.raise_for_status()
    logger.info("demo: %d virtual stations connecting to %s", count, ocpp_url)
    await run_fleet(config, stopping=stopping, progress=False)
