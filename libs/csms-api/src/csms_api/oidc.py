"""OAuth2 / OIDC access tokens (JWTs) from the operator's identity provider.

The signature, ``exp``, ``nbf``, ``iss`` and ``aud`` are checked by PyJWT; the signing
keys come from the provider's JWKS document, fetched without blocking the event loop,
kept for ``CSMS_OIDC_JWKS_TTL_S`` and fetched again at once (at most every
``CSMS_OIDC_JWKS_MIN_REFRESH_S``) when a token names a key id not in it: that is how a
key rotation at the provider reaches us.
"""

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

logger = logging.getLogger(__name__)


class InvalidToken(Exception):
    """The token is not one we accept; the message says why (safe to show the caller)."""


class JwksUnavailable(Exception):
    """No signing keys could be fetched yet from the identity provider."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    key: jwt.PyJWK
    algorithm: str | None  # the JWK's own "alg", when it declares one


class JwksCache:
    """The identity provider's signing keys by key id."""

    def __init__(
        self, url: str, *, ttl_s: float, min_refresh_s: float, timeout_s: float = 5.0
    ) -> None:
        self._url = url
        self._ttl_s = ttl_s
        self._min_refresh_s = min_refresh_s
        self._timeout_s = timeout_s
        self._keys: dict[str | None, SigningKey] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> SigningKey | None:
        """The key ``kid`` names (or the only key, for a token without ``kid``)."""
        if self._age() is None or self._age_over(self._ttl_s):
            await self._refresh(self._ttl_s)
        found = self._lookup(kid)
        if found is None and self._age_over(self._min_refresh_s):
            await self._refresh(self._min_refresh_s)  # a rotated key, perhaps
            found = self._lookup(kid)
        return found

    def _lookup(self, kid: str | None) -> SigningKey | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    def _age(self) -> float | None:
        return None if self._fetched_at is None else time.monotonic() - self._fetched_at

    def _age_over(self, seconds: float) -> bool:
        age = self._age()
        return age is None or age >= seconds

    async def _refresh(self, older_than_s: float) -> None:
        async with self._lock:  # one fetch at a time; who waited uses its result
            if self._fetched_at is not None and not self._age_over(older_than_s):
                return
            try:
                self._keys = await self._fetch()
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                logger.warning(
                    "JWKS %s not fetched (keeping %d keys): %r", self._url, len(self._keys), exc
                )
                if not self._keys:
                    raise JwksUnavailable(f"signing keys not available from {self._url}") from exc
            self._fetched_at = time.monotonic()

    async def _fetch(self) -> dict[str | None, SigningKey]:
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:
            response = await client.get(self._url, headers={"accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        keys: dict[str | None, SigningKey] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry.get("kid")] = SigningKey(jwt.PyJWK(entry), entry.get("alg"))
            except jwt.PyJWKError as exc:  # a key type we cannot use: the others still count
                logger.info("JWKS key %s skipped: %s", entry.get("kid"), exc)
        if not keys:
            raise ValueError("the JWKS document holds no usable signing key")
        return keys


class OidcVerifier:
    """Checks an access token and returns its claims."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        leeway_s: float,
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._algorithms = frozenset(algorithms)
        self._leeway_s = leeway_s

    async def claims(self, token: str) -> Mapping[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise InvalidToken("the bearer token is neither an API key nor a JWT") from exc
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise InvalidToken(f"tokens signed with {algorithm!r} are not accepted")
        kid = header.get("kid")
        signing = await self._jwks.key(kid if isinstance(kid, str) else None)
        if signing is None:
            raise InvalidToken("the token is signed by a key the identity provider does not list")
        if signing.algorithm is not None and signing.algorithm != algorithm:
            raise InvalidToken("the token's algorithm is not its key's")
        try:
            return jwt.decode(
                token,
                signing.key.key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("the token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("the token is from another issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("the token's signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is not valid: {exc}") from exc


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted ``path`` (``realm_access.roles``), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def strings(value: Any) -> list[str]:
    """A claim as a list of strings: a JSON array, or one space-separated string."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []
