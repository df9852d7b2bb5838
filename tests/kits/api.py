"""A test kit for any service's REST API: API keys made the way an admin makes them, and
an identity provider of the test's own on loopback (a real JWKS over HTTP)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.ext.asyncio import AsyncEngine

from csms_api.access import SCHEMA as ACCESS_SCHEMA
from csms_api.access import ApiKeyStore, migrate_access
from csms_api.roles import Role
from csms_core.db import create_engine, session_factory
from csms_core.identity import SCHEMA as IDENTITY_SCHEMA
from csms_core.identity import assign_site, migrate_identity


@asynccontextmanager
async def bare_database(path: Path) -> AsyncIterator[AsyncEngine]:
    """An identity and access database on SQLite, not migrated: tables are made as needed
    (``bearer_headers`` migrates the access schema)."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}", [IDENTITY_SCHEMA, ACCESS_SCHEMA])
    try:
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def two_site_database(path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated identity and access database on SQLite: CP-A on site-a, CP-B on site-b."""
    async with bare_database(path) as engine:
        await migrate_identity(engine)
        await migrate_access(engine)
        async with session_factory(engine)() as session, session.begin():
            await assign_site(session, "CP-A", "site-a")
            await assign_site(session, "CP-B", "site-b")
        yield engine


async def bearer_headers(
    engine: AsyncEngine, role: Role = Role.ADMIN, *, sites: Sequence[str] | None = None
) -> dict[str, str]:
    """An ``Authorization`` header with a new API key of ``role`` (limited to ``sites``)."""
    await migrate_access(engine)
    _, token = await ApiKeyStore(session_factory(engine)).create(
        role, sites=sites, name=f"test {role.value}"
    )
    return {"Authorization": f"Bearer {token}"}


class IdentityProvider:
    """An OIDC identity provider of a test's own on loopback: it serves its JWKS over real
    HTTP and signs access tokens with its current RSA key; ``rotate`` changes the key."""

    def __init__(self, issuer: str = "https://idp.test/realms/csms", audience: str = "csms"):
        self.issuer = issuer
        self.audience = audience
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.fetches = 0
        self._server: asyncio.Server | None = None
        self.rotate()

    @property
    def jwks_url(self) -> str:
        assert self._server is not None, "start the provider first"
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/jwks"

    def rotate(self, *, keep_old: bool = False) -> str:
        """A new signing key (the newest signs); the old ones stay listed if ``keep_old``."""
        kid = f"key-{len(self.keys) + 1}"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys = [*self.keys, (kid, key)] if keep_old else [(kid, key)]
        return kid

    def jwks(self) -> dict[str, Any]:
        entries = []
        for kid, key in self.keys:
            entry = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            entries.append({**entry, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": entries}

    def token(
        self,
        *,
        subject: str = "alice",
        roles: Sequence[str] = ("admin",),
        lifetime_s: float = 300,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token (override any claim: ``aud=``, ``iss=``, ``nbf=``...)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + int(lifetime_s),
            "roles": list(roles),
        } | claims
        current_kid, current_key = self.keys[-1]
        return jwt.encode(
            body, key or current_key, algorithm="RS256", headers={"kid": kid or current_kid}
        )

    async def __aenter__(self) -> "IdentityProvider":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # the headers: nothing in them matters here
            found = request_line.split(b" ")[1:2] == [b"/jwks"]
            self.fetches += found
            body = json.dumps(self.jwks()).encode() if found else b"{}"
            status = b"200 OK" if found else b"404 Not Found"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
                b"content-length: "
                + str(len(body)).encode()
                + b"\r\nconnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        finally:
            writer.close()
