"""Bearer tokens as an attacker tries them: none, garbage, two headers, a revoked or expired
key, a viewer on a command, a site-limited key on another site's station, and JWTs that
are expired, for another audience or issuer, badly signed, or signed by a rotated key."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from csms_api.access import ApiKey, ApiKeyStore, KeyCheck, VerifiedKeys
from csms_api.access.api import router as api_keys_router
from csms_api.app import create_service_app
from csms_api.auth import (
    AdminDep,
    Authenticator,
    AuthSettings,
    OperatorDep,
    PartnerDep,
    ViewerDep,
    authenticator_of,
    require_station,
    visible_stations,
)
from csms_api.roles import Role
from csms_core.db import session_factory, utc_now
from csms_core.identity import StationSite
from tests.kits.api import IdentityProvider, bearer_headers, two_site_database


def _routes() -> APIRouter:
    router = APIRouter()

    @router.get("/public-data")
    async def public_data(caller: PartnerDep) -> dict[str, str]:
        """Partners and everyone above."""
        return {"subject": caller.subject}

    @router.get("/reading")
    async def reading(caller: ViewerDep) -> dict[str, str]:
        """Viewers and above."""
        return {"subject": caller.subject}

    @router.post("/command")
    async def command(caller: OperatorDep) -> dict[str, str]:
        """Operators and above."""
        return {"subject": caller.subject}

    @router.post("/credentials")
    async def credentials(caller: AdminDep) -> dict[str, str]:
        """Admins only."""
        return {"subject": caller.subject}

    @router.get("/stations/{station_id}")
    async def station(request: Request, caller: ViewerDep, station_id: str) -> dict[str, str]:
        """One station, if the caller sees its site."""
        await require_station(request, caller, station_id)
        return {"station_id": station_id}

    @router.get("/stations")
    async def stations(request: Request, caller: ViewerDep) -> list[str]:
        """The stations the caller sees."""
        query = select(StationSite.station_id).order_by(col(StationSite.station_id))
        visible = visible_stations(caller)
        if visible is not None:
            query = query.where(col(StationSite.station_id).in_(visible))
        async with authenticator_of(request).factory() as session:
            return list((await session.exec(query)).all())

    return router


def _app(engine: AsyncEngine, settings: AuthSettings | None = None) -> FastAPI:
    return create_service_app(
        "test",
        routers=[_routes(), api_keys_router],
        authenticator=Authenticator(settings or AuthSettings(), session_factory(engine)),
        ready=lambda: True,
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """CP-A on site-a, CP-B on site-b."""
    async with two_site_database(tmp_path / "csms.db") as engine:
        yield engine


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://csms/api/v1") as client:
        yield client


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def assert_unauthenticated(response: httpx.Response, detail_part: str) -> None:
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert detail_part in body["detail"]


async def test_no_token_is_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/reading")

    assert_unauthenticated(response, "Authorization: Bearer")
    assert response.headers["www-authenticate"] == 'Bearer realm="csms"'


@pytest.mark.parametrize(
    "authorization", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer   ", "csms_0123456789ab_x"]
)
async def test_a_header_that_is_no_bearer_token_is_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    assert_unauthenticated(
        await client.get("/reading", headers={"Authorization": authorization}), "Bearer"
    )


@pytest.mark.parametrize(
    "token", ["csms_0123456789ab_forged", "csms_zzzzzzzzzzzz_x", "not-a-token", "a.b.c"]
)
async def test_a_made_up_token_is_401_invalid_token(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/reading", headers={"Authorization": f"Bearer {token}"})

    assert_unauthenticated(response, "not a valid API key")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_two_authorization_headers_are_400(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    admin = (await bearer_headers(engine))["Authorization"]
    headers = [("Authorization", admin), ("Authorization", "Bearer csms_0123456789ab_x")]

    response = await client.get("/reading", headers=headers)

    assert assert_problem(response, 400)["type"] == "urn:csms:problem:ambiguous-credentials"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.PARTNER, {"/public-data"}),
        (Role.VIEWER, {"/public-data", "/reading"}),
        (Role.OPERATOR, {"/public-data", "/reading", "/command"}),
        (Role.ADMIN, {"/public-data", "/reading", "/command", "/credentials"}),
    ],
)
async def test_each_role_reaches_its_routes_and_gets_403_above(
    client: httpx.AsyncClient, engine: AsyncEngine, role: Role, allowed: set[str]
) -> None:
    headers = await bearer_headers(engine, role)
    for method, path in [
        ("GET", "/public-data"),
        ("GET", "/reading"),
        ("POST", "/command"),
        ("POST", "/credentials"),
    ]:
        response = await client.request(method, path, headers=headers)
        if path in allowed:
            assert response.status_code == 200, (role, path, response.text)
        else:
            body = assert_problem(response, 403)
            assert body["type"] == "urn:csms:problem:forbidden"
            assert body["required_role"] in {"viewer", "operator", "admin"}


async def test_a_revoked_key_stops_working_at_once_on_the_replica_that_revoked_it(
    engine: AsyncEngine,
) -> None:
    authenticator = Authenticator(AuthSettings(), session_factory(engine))
    app = create_service_app(
        "test", routers=[_routes()], authenticator=authenticator, ready=lambda: True
    )
    key, token = await ApiKeyStore(session_factory(engine)).create(Role.OPERATOR)
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://csms/api/v1") as client:
        assert (await client.post("/command", headers=headers)).status_code == 200

        await authenticator.keys.revoke(key.key_id)  # what DELETE /api-keys/{id} does

        assert_unauthenticated(await client.post("/command", headers=headers), "revoked")


async def test_a_key_revoked_elsewhere_is_refused_once_the_cache_ttl_has_passed(
    engine: AsyncEngine,
) -> None:
    """Another replica (or the CLI) revoked it: this one remembers the key it verified for
    CSMS_API_KEY_CACHE_TTL_S at most, then reads the revocation."""
    now = [0.0]
    here = ApiKeyStore(session_factory(engine), VerifiedKeys(5.0, clock=lambda: now[0]))
    elsewhere = ApiKeyStore(session_factory(engine))
    key, token = await elsewhere.create(Role.OPERATOR)
    assert (await here.verify(token)).check is KeyCheck.VALID

    await elsewhere.revoke(key.key_id)

    now[0] = 4.9
    assert (await here.verify(token)).check is KeyCheck.VALID  # the documented bound
    now[0] = 5.0
    assert (await here.verify(token)).check is KeyCheck.REVOKED


async def test_with_no_cache_a_key_revoked_elsewhere_is_refused_at_once(
    engine: AsyncEngine,
) -> None:
    settings = AuthSettings(api_key_cache_ttl_s=0)
    transport = httpx.ASGITransport(app=_app(engine, settings))
    key, token = await ApiKeyStore(session_factory(engine)).create(Role.OPERATOR)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://csms/api/v1") as client:
        assert (await client.post("/command", headers=headers)).status_code == 200
        await ApiKeyStore(session_factory(engine)).revoke(key.key_id)
        assert_unauthenticated(await client.post("/command", headers=headers), "revoked")


async def test_a_verified_key_is_not_read_again_within_the_ttl(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The point of the cache: a REST request of a known key reads no database row (the
    command path's latency, issue 10)."""
    _, token = await ApiKeyStore(session_factory(engine)).create(Role.OPERATOR)
    headers = {"Authorization": f"Bearer {token}"}
    statements: list[str] = []

    def note(*args: Any) -> None:
        statements.append(str(args[2]))

    assert (await client.post("/command", headers=headers)).status_code == 200  # verifies
    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        for _ in range(3):
            assert (await client.post("/command", headers=headers)).status_code == 200
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert not [text for text in statements if "api_key" in text]
    assert [text for text in statements if "audit_entry" in text]  # the audit still writes


def _key_reads(engine: AsyncEngine) -> tuple[list[str], Any]:
    """The statements on the api_key table from now on, and the listener (to remove)."""
    reads: list[str] = []

    def note(*args: Any) -> None:
        if "api_key" in str(args[2]):
            reads.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    return reads, note


async def test_requests_at_once_share_one_read_of_a_key_not_yet_remembered(
    engine: AsyncEngine,
) -> None:
    """A busy client's first second (issue 10, the command path): twenty requests that find
    the key not remembered wait for one database read, not one each."""
    _, token = await ApiKeyStore(session_factory(engine)).create(Role.OPERATOR)
    store = ApiKeyStore(session_factory(engine), VerifiedKeys(5.0))
    reads, note = _key_reads(engine)
    try:
        checks = await asyncio.gather(*(store.verify(token) for _ in range(20)))
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        refused = await asyncio.gather(*(store.verify(forged) for _ in range(3)))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert {check.check for check in checks} == {KeyCheck.VALID}
    assert {check.check for check in refused} == {KeyCheck.INVALID}
    assert len(reads) == 2  # one for the key, one for the forged token


async def test_a_key_in_use_is_read_again_in_the_background_before_its_time_ends(
    engine: AsyncEngine,
) -> None:
    """Refresh-ahead: used past half of CSMS_API_KEY_CACHE_TTL_S, the remembered key serves
    that request and is read again meanwhile; a key in steady use never waits for a read."""
    now = [0.0]
    store = ApiKeyStore(session_factory(engine), VerifiedKeys(5.0, clock=lambda: now[0]))
    _, token = await store.create(Role.OPERATOR)
    assert (await store.verify(token)).check is KeyCheck.VALID  # read at 0
    reads, note = _key_reads(engine)
    try:
        now[0] = 2.4
        assert (await store.verify(token)).check is KeyCheck.VALID
        await store.settled()
        assert reads == []  # younger than half the TTL: no read
        now[0] = 2.6
        assert (await store.verify(token)).check is KeyCheck.VALID  # served as remembered
        await store.settled()
        assert len(reads) == 1  # read again, at 2.6
        now[0] = 7.0  # past the first read's TTL, within the second's
        assert (await store.verify(token)).check is KeyCheck.VALID
        assert len(reads) == 1
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


async def test_a_key_revoked_elsewhere_is_refused_at_its_refresh_and_within_the_ttl(
    engine: AsyncEngine,
) -> None:
    """Refresh-ahead never stretches the bound: the read ahead finds the revocation, and the
    next request is refused (never later than the TTL after the last read before it)."""
    now = [0.0]
    here = ApiKeyStore(session_factory(engine), VerifiedKeys(5.0, clock=lambda: now[0]))
    elsewhere = ApiKeyStore(session_factory(engine))
    key, token = await elsewhere.create(Role.OPERATOR)
    assert (await here.verify(token)).check is KeyCheck.VALID
    await elsewhere.revoke(key.key_id)

    now[0] = 3.0
    assert (await here.verify(token)).check is KeyCheck.VALID  # remembered, read again now
    await here.settled()
    assert (await here.verify(token)).check is KeyCheck.REVOKED


def test_a_read_under_way_while_a_key_is_revoked_here_does_not_remember_it() -> None:
    """A verification read before the revocation committed, finishing after it, must not
    bring the revoked key back for a TTL on the replica that revoked it."""
    verified = VerifiedKeys(300.0)
    key = ApiKey(key_id="0" * 12, role="viewer", secret_sha256="0" * 64)
    read_in = verified.generation
    verified.forget(key.key_id)  # revoked meanwhile

    verified.put("t0", key, read_in=read_in)

    assert verified.get("t0") is None
    verified.put("t0", key, read_in=verified.generation)
    assert verified.get("t0") is key


async def test_a_remembered_key_still_expires_on_time(engine: AsyncEngine) -> None:
    verified = VerifiedKeys(300.0)
    store = ApiKeyStore(session_factory(engine), verified)
    key, token = await store.create(Role.VIEWER)
    assert (await store.verify(token)).check is KeyCheck.VALID
    verified.put(token, key.model_copy(update={"expires_at": utc_now() - timedelta(seconds=1)}))

    assert (await store.verify(token)).check is KeyCheck.EXPIRED


async def test_a_wrong_secret_is_refused_even_while_the_key_is_remembered(
    engine: AsyncEngine,
) -> None:
    store = ApiKeyStore(session_factory(engine), VerifiedKeys(300.0))
    _, token = await store.create(Role.ADMIN)
    assert (await store.verify(token)).check is KeyCheck.VALID
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    assert (await store.verify(forged)).check is KeyCheck.INVALID


def test_remembered_keys_are_bounded_least_recently_used_first() -> None:
    verified = VerifiedKeys(300.0, capacity=2)
    keys = [ApiKey(key_id=f"{n:012x}", role="viewer", secret_sha256="0" * 64) for n in range(3)]
    verified.put("t0", keys[0])
    verified.put("t1", keys[1])
    assert verified.get("t0") is keys[0]  # used: t1 is now the least recent
    verified.put("t2", keys[2])
    assert (verified.get("t0"), verified.get("t1"), verified.get("t2")) == (
        keys[0],
        None,
        keys[2],
    )


async def test_an_expired_key_is_401(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    store = ApiKeyStore(session_factory(engine))
    _, token = await store.create(Role.ADMIN, expires_at=utc_now() - timedelta(seconds=1))

    response = await client.get("/reading", headers={"Authorization": f"Bearer {token}"})

    assert_unauthenticated(response, "expired")


async def test_a_key_with_a_wrong_secret_is_401(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    _, token = await ApiKeyStore(session_factory(engine)).create(Role.ADMIN)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    response = await client.get("/reading", headers={"Authorization": f"Bearer {forged}"})

    assert_unauthenticated(response, "not a valid API key")


async def test_last_use_is_recorded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    store = ApiKeyStore(session_factory(engine))
    key, token = await store.create(Role.VIEWER)
    assert key.last_used_at is None

    await client.get("/reading", headers={"Authorization": f"Bearer {token}"})

    used = await store.get(key.key_id)
    assert used is not None
    assert used.last_used_at is not None


async def test_a_site_limited_key_sees_its_sites_stations_only(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    headers = await bearer_headers(engine, Role.VIEWER, sites=["site-a"])

    assert (await client.get("/stations/CP-A", headers=headers)).status_code == 200
    other = await client.get("/stations/CP-B", headers=headers)
    assert assert_problem(other, 404)["detail"] == "no station CP-B"
    assert_problem(await client.get("/stations/CP-NOWHERE", headers=headers), 404)
    assert (await client.get("/stations", headers=headers)).json() == ["CP-A"]
    everywhere = await bearer_headers(engine, Role.VIEWER)
    assert (await client.get("/stations", headers=everywhere)).json() == ["CP-A", "CP-B"]


async def test_the_openapi_document_shows_the_scheme_and_each_operations_role(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("http://csms/openapi.json")).json()

    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    paths = spec["paths"]
    for path, method, role in [
        ("/api/v1/public-data", "get", "partner"),
        ("/api/v1/reading", "get", "viewer"),
        ("/api/v1/command", "post", "operator"),
        ("/api/v1/credentials", "post", "admin"),
        ("/api/v1/api-keys", "post", "admin"),
    ]:
        assert paths[path][method]["security"] == [{"bearer": [role]}]
        assert paths[path][method]["x-required-role"] == role
    assert "security" not in paths["/healthz"]["get"]


async def test_health_readiness_and_openapi_are_open_metrics_is_not(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert (await client.get(f"http://csms{path}")).status_code == 200, path
    assert_problem(await client.get("http://csms/metrics"), 401)
    viewer = await bearer_headers(engine, Role.VIEWER)
    assert (await client.get("http://csms/metrics", headers=viewer)).status_code == 200


# --- API keys over REST -----------------------------------------------------------------


async def test_an_admin_creates_lists_and_revokes_keys_over_rest(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    admin = await bearer_headers(engine)
    created = await client.post(
        "/api-keys",
        json={"role": "operator", "name": "depot app", "sites": ["site-a"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    token = body["token"]
    operator = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/command", headers=operator)).status_code == 200
    assert (await client.get("/stations", headers=operator)).json() == ["CP-A"]

    listed = (await client.get("/api-keys", headers=admin)).json()
    assert body["key_id"] in [key["key_id"] for key in listed["items"]]
    assert token not in str(listed)
    assert "token" not in (await client.get(f"/api-keys/{body['key_id']}", headers=admin)).json()

    revoked = await client.delete(f"/api-keys/{body['key_id']}", headers=admin)
    assert revoked.status_code == 204
    assert_unauthenticated(await client.post("/command", headers=operator), "revoked")
    after = (await client.get(f"/api-keys/{body['key_id']}", headers=admin)).json()
    assert (after["active"], after["revoked_at"] is not None) == (False, True)


async def test_api_keys_are_for_network_wide_admins_only(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    operator = await bearer_headers(engine, Role.OPERATOR)
    site_admin = await bearer_headers(engine, Role.ADMIN, sites=["site-a"])
    new_key = {"role": "admin"}

    assert_problem(await client.post("/api-keys", json=new_key, headers=operator), 403)
    assert_problem(await client.get("/api-keys", headers=operator), 403)
    limited = await client.post("/api-keys", json=new_key, headers=site_admin)
    assert assert_problem(limited, 403)["type"] == "urn:csms:problem:forbidden-for-site-limited"


@pytest.mark.parametrize(
    "body",
    [
        {"role": "root"},
        {"role": "admin", "expires_at": "2000-01-01T00:00:00Z"},
        {"role": "admin", "expires_at": "2999-01-01T00:00:00"},  # no zone
        {"role": "admin", "sites": ["../etc"]},
        {"role": "admin", "unknown": 1},
    ],
)
async def test_a_bad_new_key_is_422(
    client: httpx.AsyncClient, engine: AsyncEngine, body: dict[str, Any]
) -> None:
    assert_problem(
        await client.post("/api-keys", json=body, headers=await bearer_headers(engine)), 422
    )


async def test_paging_of_keys_is_bounded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    admin = await bearer_headers(engine)
    for params in ({"limit": 0}, {"limit": 501}, {"offset": 2**70}):
        assert_problem(await client.get("/api-keys", params=params, headers=admin), 422)


# --- OIDC access tokens -----------------------------------------------------------------


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    async with IdentityProvider() as provider:
        yield provider


def _oidc_settings(idp: IdentityProvider, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "oidc_issuer": idp.issuer,
        "oidc_audience": idp.audience,
        "oidc_jwks_url": idp.jwks_url,
        "oidc_jwks_min_refresh_s": 0.0,
        "oidc_leeway_s": 0.0,
    }
    return AuthSettings(**(values | overrides))


@pytest.fixture
async def oidc_client(
    engine: AsyncEngine, idp: IdentityProvider
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(engine, _oidc_settings(idp)))
    async with httpx.AsyncClient(transport=transport, base_url="http://csms/api/v1") as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_jwt_is_accepted_with_its_roles(
    oidc_client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    operator = _bearer(idp.token(subject="bob", roles=["operator", "unknown-role"]))

    response = await oidc_client.post("/command", headers=operator)

    assert response.json() == {"subject": "bob"}
    assert_problem(await oidc_client.post("/credentials", headers=operator), 403)


async def test_api_keys_still_work_next_to_oidc(
    oidc_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    assert (
        await oidc_client.get("/reading", headers=await bearer_headers(engine))
    ).status_code == 200


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"lifetime_s": -60}, "expired"),
        ({"aud": "another-api"}, "another audience"),
        ({"iss": "https://evil.test"}, "another issuer"),
        ({"nbf": 4_102_444_800}, "not valid yet"),
    ],
)
async def test_a_jwt_with_bad_claims_is_401(
    oidc_client: httpx.AsyncClient, idp: IdentityProvider, claims: dict[str, Any], reason: str
) -> None:
    response = await oidc_client.get("/reading", headers=_bearer(idp.token(**claims)))

    assert_unauthenticated(response, reason)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_jwt_without_a_subject_is_401(
    oidc_client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    token = jwt.encode(
        {"iss": idp.issuer, "aud": idp.audience, "exp": 4_102_444_800, "roles": ["admin"]},
        idp.keys[-1][1],
        algorithm="RS256",
        headers={"kid": idp.keys[-1][0]},
    )
    assert_unauthenticated(await oidc_client.get("/reading", headers=_bearer(token)), "sub")


async def test_a_badly_signed_jwt_is_401(
    oidc_client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = idp.token(key=impostor)  # the provider's kid, another key

    response = await oidc_client.get("/reading", headers=_bearer(forged))

    assert_unauthenticated(response, "signature does not verify")


async def test_a_tampered_jwt_is_401(oidc_client: httpx.AsyncClient, idp: IdentityProvider) -> None:
    header, payload, signature = idp.token(roles=["viewer"]).split(".")
    admin_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"viewer"', b'"admin"')
    ).decode()

    response = await oidc_client.get(
        "/reading", headers=_bearer(f"{header}.{admin_payload}.{signature}")
    )

    assert_unauthenticated(response, "signature does not verify")


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
async def test_a_jwt_signed_without_the_providers_key_is_401(
    oidc_client: httpx.AsyncClient, idp: IdentityProvider, algorithm: str
) -> None:
    # The classic confusion: HMAC keyed with the public key, or no signature at all.
    claims = {"iss": idp.issuer, "aud": idp.audience, "sub": "x", "exp": 4_102_444_800}
    secret: str = idp.jwks()["keys"][0]["n"] if algorithm == "HS256" else ""
    token = jwt.encode(claims, secret, algorithm=algorithm, headers={"kid": idp.keys[-1][0]})

    response = await oidc_client.get("/reading", headers=_bearer(token))

    assert_unauthenticated(response, "not accepted")


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    oidc_client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    assert (await oidc_client.get("/reading", headers=_bearer(idp.token()))).status_code == 200
    fetched = idp.fetches

    idp.rotate()
    response = await oidc_client.get("/reading", headers=_bearer(idp.token()))

    assert response.status_code == 200, response.text
    assert idp.fetches == fetched + 1


async def test_an_unknown_key_id_does_not_make_every_request_fetch(
    engine: AsyncEngine, idp: IdentityProvider
) -> None:
    app = _app(engine, _oidc_settings(idp, oidc_jwks_min_refresh_s=3600.0))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://csms/api/v1"
    ) as client:
        for n in range(20):
            token = idp.token(kid=f"made-up-{n}")
            assert_problem(await client.get("/reading", headers=_bearer(token)), 401)
    assert idp.fetches == 1


async def test_roles_and_sites_from_configured_claims(
    engine: AsyncEngine, idp: IdentityProvider
) -> None:
    settings = _oidc_settings(
        idp, oidc_roles_claim="realm_access.roles", oidc_sites_claim="csms.sites"
    )
    token = idp.token(roles=[], realm_access={"roles": ["viewer"]}, csms={"sites": ["site-b"]})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app(engine, settings)), base_url="http://csms/api/v1"
    ) as client:
        assert (await client.get("/stations", headers=_bearer(token))).json() == ["CP-B"]
        assert_problem(await client.post("/command", headers=_bearer(token)), 403)


async def test_an_unreachable_identity_provider_is_503_not_a_pass(engine: AsyncEngine) -> None:
    async with IdentityProvider() as idp:
        settings = _oidc_settings(idp)
        token = idp.token()
    async with httpx.AsyncClient(  # the provider is gone before the first fetch
        transport=httpx.ASGITransport(app=_app(engine, settings)), base_url="http://csms/api/v1"
    ) as client:
        response = await client.get("/reading", headers=_bearer(token))
    assert assert_problem(response, 503)["type"] == "urn:csms:problem:identity-provider-unavailable"
    assert response.headers["retry-after"] == "5"


def test_oidc_settings_are_all_or_nothing_and_asymmetric() -> None:
    with pytest.raises(ValueError, match="CSMS_OIDC_ISSUER"):
        AuthSettings(oidc_issuer="https://idp.test")
    with pytest.raises(ValueError, match="asymmetric"):
        AuthSettings(oidc_algorithms=["RS256", "HS256"])
