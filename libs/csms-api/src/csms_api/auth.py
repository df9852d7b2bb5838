"""Bearer-token authentication and role-based authorization of every ``/api/v1`` route.

Two kinds of bearer token are accepted everywhere: API keys (``csms_...``, stored
hashed in the ``access`` schema) and OIDC access tokens (JWTs) from the operator's
identity provider, when ``CSMS_OIDC_ISSUER``, ``CSMS_OIDC_AUDIENCE`` and
``CSMS_OIDC_JWKS_URL`` are set. A route declares its access level with one of the
aliases at the bottom (``ViewerDep``, ``PartnerDep``, ``OperatorDep``, ``AdminDep``);
the level shows in the OpenAPI document as the role of the operation's ``bearer``
security requirement (and as ``x-required-role``).

Without a token: 401 problem+json with ``WWW-Authenticate: Bearer``; a token whose
role does not reach the route: 403. A token limited to sites sees those sites'
stations only: ``require_station`` answers 404 for the others, ``visible_stations``
filters lists.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from csms_api.access import ApiKeyStore, KeyCheck, VerifiedKeys, looks_like_api_key
from csms_api.oidc import InvalidToken, JwksCache, JwksUnavailable, OidcVerifier, claim, strings
from csms_api.problems import Problem
from csms_api.roles import Role, reaches
from csms_core.actor import set_actor
from csms_core.db import utc_now
from csms_core.identity import site_of, stations_on

logger = logging.getLogger(__name__)

_STATE_KEY = "csms_authenticator"
PRINCIPAL_KEY = "csms_principal"  # the caller, in request.state (the audit reads it)
SCHEME_NAME = "bearer"
_ROLE_NAMES = frozenset(role.value for role in Role)


class AuthSettings(BaseSettings):
    """REST authentication (env prefix ``CSMS_``); API keys always work, OIDC when set."""

    model_config = SettingsConfigDict(env_prefix="CSMS_", extra="ignore")

    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    # Where the roles are in a token (a dotted path: "realm_access.roles" for Keycloak),
    # as a JSON array or a space-separated string; values other than our role names are
    # ignored. Where the sites are: absent means every site.
    oidc_roles_claim: str = "roles"
    oidc_sites_claim: str = "csms_sites"
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
    )
    oidc_leeway_s: float = Field(default=30.0, ge=0, le=300)
    oidc_jwks_ttl_s: float = Field(default=300.0, gt=0)
    oidc_jwks_min_refresh_s: float = Field(default=10.0, ge=0)
    # An API key's last use is written at most this often (not on every request).
    api_key_touch_every_s: float = Field(default=60.0, ge=0)
    # A verified API key is remembered this long (no database read per request): a key
    # revoked on another replica or with the CLI is refused within it (0: read every time).
    api_key_cache_ttl_s: float = Field(default=5.0, ge=0, le=300)

    @property
    def oidc_enabled(self) -> bool:
        return self.oidc_jwks_url is not None

    @model_validator(mode="after")
    def _oidc_complete(self) -> Self:
        values = (self.oidc_issuer, self.oidc_audience, self.oidc_jwks_url)
        if any(v is not None for v in values) and any(v is None for v in values):
            raise ValueError(
                "set all of CSMS_OIDC_ISSUER, CSMS_OIDC_AUDIENCE and CSMS_OIDC_JWKS_URL, or none"
            )
        if any(algorithm.upper().startswith(("HS", "NONE")) for algorithm in self.oidc_algorithms):
            raise ValueError("CSMS_OIDC_ALGORITHMS takes asymmetric algorithms only")
        return self


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key (``subject`` = its key id) or a token's ``sub``."""

    subject: str
    kind: Literal["api-key", "jwt"]
    roles: frozenset[Role]
    sites: frozenset[str] | None = None  # None: every site

    @property
    def network_wide(self) -> bool:
        return self.sites is None

    def reaches(self, level: Role) -> bool:
        return reaches(self.roles, level)

    def sees_site(self, site_id: str | None) -> bool:
        return self.sites is None or (site_id is not None and site_id in self.sites)


def unauthenticated(detail: str, *, error: str | None = None) -> Problem:
    """401 with the RFC 6750 challenge (``error="invalid_token"`` for a bad token)."""
    challenge = 'Bearer realm="csms"' + (f', error="{error}"' if error else "")
    return Problem(401, detail, kind="unauthenticated", headers={"WWW-Authenticate": challenge})


class Authenticator:
    """Turns a bearer token into a Principal; one per app, kept in ``app.state``."""

    def __init__(self, settings: AuthSettings, factory: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.factory = factory
        self.keys = ApiKeyStore(factory, VerifiedKeys(settings.api_key_cache_ttl_s))
        self._touched: dict[str, float] = {}
        self._oidc = (
            OidcVerifier(
                JwksCache(
                    settings.oidc_jwks_url,
                    ttl_s=settings.oidc_jwks_ttl_s,
                    min_refresh_s=settings.oidc_jwks_min_refresh_s,
                ),
                issuer=settings.oidc_issuer or "",
                audience=settings.oidc_audience or "",
                algorithms=settings.oidc_algorithms,
                leeway_s=settings.oidc_leeway_s,
            )
            if settings.oidc_jwks_url is not None
            else None
        )

    async def authenticate(self, token: str) -> Principal:
        if looks_like_api_key(token):
            return await self._api_key(token)
        if self._oidc is None:
            raise unauthenticated("the bearer token is not a valid API key", error="invalid_token")
        return await self._jwt(token)

    async def _api_key(self, token: str) -> Principal:
        verified = await self.keys.verify(token)
        if verified.key is None or verified.check is not KeyCheck.VALID:
            reason = {
                KeyCheck.REVOKED: "the API key has been revoked",
                KeyCheck.EXPIRED: "the API key has expired",
            }.get(verified.check, "the bearer token is not a valid API key")
            raise unauthenticated(reason, error="invalid_token")
        key = verified.key
        await self._touch(key.key_id)
        sites = frozenset(key.sites) if key.sites is not None else None
        return Principal(key.key_id, "api-key", frozenset({Role(key.role)}), sites)

    async def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        last = self._touched.get(key_id)
        if last is not None and now - last < self.settings.api_key_touch_every_s:
            return
        if len(self._touched) > 10_000:  # bounded: forget the oldest half
            for stale in sorted(self._touched, key=self._touched.__getitem__)[:5_000]:
                del self._touched[stale]
        self._touched[key_id] = now
        await self.keys.touch(key_id, utc_now())

    async def _jwt(self, token: str) -> Principal:
        assert self._oidc is not None  # noqa: S101 - checked by the caller
        try:
            claims = await self._oidc.claims(token)
        except InvalidToken as exc:
            raise unauthenticated(str(exc), error="invalid_token") from exc
        except JwksUnavailable as exc:
            logger.warning("OIDC token refused: %s", exc)
            raise Problem(
                503,
                "the identity provider's keys are unavailable; retry",
                kind="identity-provider-unavailable",
                headers={"Retry-After": "5"},
            ) from exc
        names = strings(claim(claims, self.settings.oidc_roles_claim))
        roles = frozenset(Role(name) for name in names if name in _ROLE_NAMES)
        sites_claim = claim(claims, self.settings.oidc_sites_claim)
        sites = frozenset(strings(sites_claim)) if sites_claim is not None else None
        return Principal(str(claims["sub"]), "jwt", roles, sites)


def install_auth(
    app: FastAPI, authenticator: "Authenticator | Callable[[], Authenticator]"
) -> None:
    """Authenticate the ``/api/v1`` routes of ``app`` (and of routers mounted in it)
    with ``authenticator`` (or the one a factory makes on the first request); each
    operation's role shows in its OpenAPI document."""
    setattr(app.state, _STATE_KEY, authenticator)
    app.openapi = _openapi_with_roles(app.openapi)  # type: ignore[method-assign]


def _openapi_with_roles(generate: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    annotated: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI's own, generated once and cached
        if not annotated or annotated[0] is not schema:
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    for requirement in operation.get("security", []):
                        if requirement.get(SCHEME_NAME):
                            operation["x-required-role"] = requirement[SCHEME_NAME][0]
            annotated[:] = [schema]
        return schema

    return openapi


def resolve_authenticator(app: Any) -> Authenticator | None:
    """The app's authenticator (made by its factory on first use); None if it has none."""
    authenticator = getattr(app.state, _STATE_KEY, None)
    if callable(authenticator) and not isinstance(authenticator, Authenticator):
        authenticator = authenticator()
        setattr(app.state, _STATE_KEY, authenticator)
    return authenticator if isinstance(authenticator, Authenticator) else None


def authenticator_of(request: Request) -> Authenticator:
    authenticator = resolve_authenticator(request.app)
    if authenticator is None:  # fail closed: never serve unprotected
        logger.error("no Authenticator installed on the app serving %s", request.url.path)
        raise Problem(500, "this API has no authentication configured")
    return authenticator


async def authenticate(request: Request) -> Principal:
    """The caller of this request (401 without a valid bearer token)."""
    known = getattr(request.state, PRINCIPAL_KEY, None)
    if isinstance(known, Principal):
        return known
    headers = request.headers.getlist("authorization")
    if len(headers) > 1:
        raise Problem(
            400, "send one Authorization header, not several", kind="ambiguous-credentials"
        )
    if not headers:
        raise unauthenticated("this API needs Authorization: Bearer <API key or access token>")
    scheme, _, token = headers[0].partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("use Authorization: Bearer <API key or access token>")
    principal = await authenticator_of(request).authenticate(token.strip())
    setattr(request.state, PRINCIPAL_KEY, principal)
    # What this request causes (a command to a station) is audited as the caller's.
    set_actor(f"{principal.kind}:{principal.subject}")
    return principal


CallerDep = Annotated[Principal, Depends(authenticate)]

# Documents the scheme in OpenAPI; the header itself is read by ``authenticate``.
bearer_scheme = HTTPBearer(
    scheme_name=SCHEME_NAME,
    bearerFormat="API key (csms_...) or OIDC access token (JWT)",
    description=(
        "An API key or an access token from the operator's identity provider. Each "
        "operation names the lowest role it needs: partner < viewer < operator < admin "
        "(partner: read-only, partners' data; admin reaches everything)."
    ),
    auto_error=False,
)


async def _authorize(  # async: FastAPI runs a plain def in a worker thread, a hop per request
    scopes: SecurityScopes,
    caller: CallerDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    level = Role(scopes.scopes[0])
    if not caller.reaches(level):
        held = ", ".join(sorted(caller.roles)) or "no role"
        raise Problem(
            403,
            f"this needs the {level.value} role (or higher); the caller has {held}",
            kind="forbidden",
            required_role=level.value,
        )
    return caller


def _level(role: Role) -> Any:
    return Security(_authorize, scopes=[role.value])


PartnerDep = Annotated[Principal, _level(Role.PARTNER)]
ViewerDep = Annotated[Principal, _level(Role.VIEWER)]
OperatorDep = Annotated[Principal, _level(Role.OPERATOR)]
AdminDep = Annotated[Principal, _level(Role.ADMIN)]


def require_network_wide(caller: Principal, what: str) -> None:
    """403 for a site-limited caller on something that spans every site."""
    if not caller.network_wide:
        raise Problem(
            403, f"a site-limited token cannot change {what}", kind="forbidden-for-site-limited"
        )


async def sees_station(request: Request, caller: Principal, station_id: str) -> bool:
    """Whether the station is on one of the caller's sites (always, for a network-wide one)."""
    if caller.sites is None:
        return True
    async with authenticator_of(request).factory() as session:
        return caller.sees_site(await site_of(session, station_id))


async def require_station(request: Request, caller: Principal, station_id: str) -> None:
    """404 (as if it did not exist) for a station not on the caller's sites."""
    if not await sees_station(request, caller, station_id):
        raise Problem(404, f"no station {station_id}", kind="unknown-station")


def visible_stations(caller: Principal) -> SelectOfScalar[str] | None:
    """The station ids the caller may see, for ``station_id IN (...)``; None: all."""
    return None if caller.sites is None else stations_on(caller.sites)


_WITHOUT_BEARER: dict[int, str] = {}


def without_bearer(router: APIRouter, reason: str) -> APIRouter:
    """Mark a router that is deliberately served without bearer tokens and outside
    ``/api/v1`` (e.g. where stations fetch firmware by a URL token); the test that checks
    every route for a token skips it and names the reason."""
    _WITHOUT_BEARER[id(router)] = reason
    return router


def bearer_exemption(router: APIRouter) -> str | None:
    """Why ``router`` is served without bearer tokens, if it is."""
    return _WITHOUT_BEARER.get(id(router))
