"""A CSMS of gateway, sessions and security on the embedded bus, router and SQLite, with real TLS.

The gateway's server certificate comes from an operator CA of the test (trustme);
stations' client certificates come from the security service's own CA, which
the gateway trusts for profile 3 (its CSMS_TLS_CLIENT_CA_FILE is the CA file the
security service created on first start). Stations are the ``ocpp`` package's
clients (``tests.security_stations``); REST goes to the security app in process.
"""

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trustme
from sqlalchemy.ext.asyncio import AsyncEngine

from csms_api.access import SCHEMA as ACCESS_SCHEMA
from csms_api.roles import Role
from csms_core.bus.memory import InMemoryBus
from csms_core.db import create_engine, session_factory
from csms_core.identity import SCHEMA as IDENTITY_SCHEMA
from csms_core.identity import IdentityStore
from csms_core.router import CommandClient
from csms_core.router.memory import InMemoryRouter
from csms_core.settings import Environment
from csms_gateway.server import Gateway
from csms_security.app import create_app
from csms_security.db import SCHEMA as SECURITY_SCHEMA
from csms_security.service import SecurityService
from csms_security.settings import SecuritySettings
from csms_sessions.db import SCHEMA as SESSIONS_SCHEMA
from csms_sessions.service import SessionsService
from csms_sessions.settings import SessionsSettings
from tests.kits.api import bearer_headers
from tests.kits.gateway import running_gateway, settings_for_tests

ORGANIZATION = "Test CPO"


@dataclass
class Csms:
    gateway: Gateway  # wss:// (with ``tls``), profiles 0-3
    security: SecurityService
    sessions: SessionsService
    bus: InMemoryBus
    identities: IdentityStore
    api: httpx.AsyncClient
    operator_ca: trustme.CA
    ca_file: Path
    plain_gateway: Gateway | None = None  # ws:// beside a TLS one (profiles 0 and 1)
    engine: AsyncEngine | None = None
    transport: httpx.ASGITransport | None = None

    async def client(self, role: Role, sites: list[str] | None = None) -> httpx.AsyncClient:
        """A REST client of the security app with a new API key of ``role``."""
        assert self.engine is not None
        return httpx.AsyncClient(
            transport=self.transport,
            base_url="http://csms/api/v1",
            headers=await bearer_headers(self.engine, role, sites=sites),
        )

    @property
    def ws_url(self) -> str:
        gateway = self.plain_gateway or self.gateway
        return f"ws://127.0.0.1:{gateway.port}"

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.gateway.port}"

    def server_trust(self) -> ssl.SSLContext:
        """A station's TLS context that trusts the gateway's server certificate."""
        context = ssl.create_default_context()
        self.operator_ca.configure_trust(context)
        return context

    def published(self, topic: str, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            delivery.envelope.model_dump(mode="json")
            for delivery in self.bus.records(topic)
            if event_type is None or delivery.envelope.type == event_type
        ]


@asynccontextmanager
async def running_csms(
    tmp_path: Path,
    *,
    tls: bool = True,
    security: dict[str, Any] | None = None,
    gateway: dict[str, Any] | None = None,
    station_ca_file: Path | None = None,
) -> AsyncIterator[Csms]:
    """``station_ca_file``: the CAs the gateway trusts for profile 3 (default: the security
    service's own CA file)."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}"
    common: dict[str, Any] = {
        "environment": Environment.DEVELOPMENT,
        "kafka_bootstrap": None,
        "redis_url": None,
        "database_url": database_url,
        "log_json": False,
        "command_timeout_s": 5.0,
    }
    security_settings = SecuritySettings(
        **common,
        **{
            "ca_dir": tmp_path / "ca",
            "organization": ORGANIZATION,
            # Tests that want the list of installed certificates asked for at boot say so.
            "inventory_max_age_s": 0,
            # The tests' OCSP responders and CRLs are on loopback.
            "pki_allow_private_addresses": True,
            **(security or {}),
        },
    )
    bus, router = InMemoryBus(), InMemoryRouter()
    engine = create_engine(
        database_url, [IDENTITY_SCHEMA, ACCESS_SCHEMA, SESSIONS_SCHEMA, SECURITY_SCHEMA]
    )
    operator_ca = trustme.CA()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        security_commands = await stack.enter_async_context(CommandClient(router, "security"))
        sessions_commands = await stack.enter_async_context(CommandClient(router, "sessions"))
        sessions = SessionsService(
            SessionsSettings(**common, unknown_station_policy="accept"),
            bus=bus,
            router=router,
            commands=sessions_commands,
            engine=engine,
        )
        stopping = asyncio.Event()
        tasks = asyncio.TaskGroup()
        await stack.enter_async_context(tasks)
        stack.callback(stopping.set)
        # One after the other: both migrate the identity schema.
        tasks.create_task(sessions.run(stopping=stopping))
        await asyncio.wait_for(sessions.ready.wait(), 30)
        service = await stack.enter_async_context(
            SecurityService(
                security_settings,
                bus=bus,
                router=router,
                commands=security_commands,
                engine=engine,
            )
        )
        tasks.create_task(service.run(stopping=stopping))
        await asyncio.wait_for(service.ready.wait(), 30)
        ca_file = station_ca_file or security_settings.ca_dir / "ca.pem"
        gateway_settings: dict[str, Any] = {"decision_timeout_s": 5.0, **(gateway or {})}
        if tls:
            gateway_settings |= _tls_files(tmp_path, operator_ca, ca_file)
        identities = IdentityStore(session_factory(engine))
        running = await stack.enter_async_context(
            running_gateway(settings_for_tests(**gateway_settings), bus, router, identities)
        )
        plain = None
        if tls:  # a second gateway on ws://, as an operator runs for stations below profile 2
            plain_settings = settings_for_tests(
                gateway_id="gw-plain", **{"decision_timeout_s": 5.0, **(gateway or {})}
            )
            plain = await stack.enter_async_context(
                running_gateway(plain_settings, bus, router, identities)
            )
        transport = httpx.ASGITransport(app=create_app(service))
        api = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=transport,
                base_url="http://csms/api/v1",
                headers=await bearer_headers(engine, Role.ADMIN),
            )
        )
        yield Csms(
            running,
            service,
            sessions,
            bus,
            identities,
            api,
            operator_ca,
            ca_file,
            plain,
            engine,
            transport,
        )


def _tls_files(tmp_path: Path, operator_ca: trustme.CA, station_ca: Path) -> dict[str, Path]:
    server = operator_ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "server-chain.pem", tmp_path / "server-key.pem"
    cert_file.write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(key_file))
    return {"tls_cert_file": cert_file, "tls_key_file": key_file, "tls_client_ca_file": station_ca}
