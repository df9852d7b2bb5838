"""The HTTP side of a connection: paths, subprotocol negotiation and authentication.

Only ``/ocpp/{station_id}`` upgrades to a WebSocket; ``/healthz`` and ``/metrics``
are plain HTTP. Everything a station can get wrong is refused here with a
status and a text body saying why, before any WebSocket exists. Here the TLS
handshake (if any) is over, so a client certificate is already verified.
"""

import asyncio
import base64
import binascii
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from csms_core.identity import IdentityStore, StationIdentity, verify_password
from csms_core.settings import UnknownStationPolicy
from csms_gateway.admission import ConnectionCaps, Refusal, RefusalReason
from csms_gateway.flow import ACCEPTED
from csms_gateway.identities import CoalescedIdentities
from csms_gateway.metrics import CONTENT_TYPE_LATEST, GatewayMetrics
from csms_gateway.tls import certificate_common_names, tls_session
from csms_ocpp.station_id import InvalidStationId, parse_station_id
from csms_ocpp.versions import PREFERENCE, OcppVersion, negotiate

logger = logging.getLogger(__name__)

OCPP_PATH_PREFIX = "/ocpp/"
SUPPORTED = ", ".join(version.value for version in PREFERENCE)


@dataclass(frozen=True, slots=True)
class Admission:
    """What the handshake established about a station, handed to its connection."""

    station_id: str
    version: OcppVersion
    security_profile: int
    lenient: bool
    remote_address: str
    # The boot gate's start (flow.BootGate): the RegistrationStatus the station last got.
    registration: str | None = ACCEPTED


class Handshake:
    """``process_request`` of the WebSocket server: decides who may upgrade.

    A station's required profile is the higher of the gateway's minimum and the one
    recorded for the station (identity); a connection offering less is refused before it
    can supersede the station's current connection, so a second connection must
    authenticate at least as strongly as the station's profile to replace the first.
    """

    def __init__(
        self,
        identities: IdentityStore,
        metrics: GatewayMetrics,
        min_security_profile: int = 0,
        *,
        unknown_station_policy: UnknownStationPolicy = "accept",
        caps: ConnectionCaps | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> None:
        self._identities = identities
        self._lookups = CoalescedIdentities(identities)  # a storm's handshakes, in bulk
        self._metrics = metrics
        self._min_security_profile = min_security_profile
        self._unknown_station_policy = unknown_station_policy
        self._caps = caps if caps is not None else ConnectionCaps(0, 0)
        self._on_refused = on_refused
        # Filled here, read by the connection handler; entries die with their connection.
        self.admitted: weakref.WeakKeyDictionary[ServerConnection, Admission] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok")
        if path == "/metrics":
            return _metrics_response(connection, self._metrics.exposition())
        if not path.startswith(OCPP_PATH_PREFIX) or "/" in path.removeprefix(OCPP_PATH_PREFIX):
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "not_found", "not found")
        host = _remote_host(connection)
        full = self._caps.refusal(host)
        if full is not None:
            return self._refuse(connection, full[0], "capacity", full[1])
        response = await self._admit(connection, request, path.removeprefix(OCPP_PATH_PREFIX))
        if response is None:
            # The slot is held until the TCP connection is lost, opened or not.
            self._caps.take(host)
            connection.connection_lost_waiter.add_done_callback(lambda _: self._caps.release(host))
        return response

    async def _admit(
        self, connection: ServerConnection, request: Request, segment: str
    ) -> Response | None:
        try:
            station_id = parse_station_id(segment)
        except (InvalidStationId, UnicodeDecodeError) as exc:
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "station_id", str(exc))
        if len(request.headers.get_all("Authorization")) > 1:
            # RFC 9110 §11.6.2: one set of credentials; two are ambiguous (and used to
            # make the header lookup raise: a 500).
            text = "send one Authorization header, not several"
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "auth", text)
        version = negotiate(offered_subprotocols(request.headers))
        if version is None:
            # OCPP 2.0.1 Part 4 §3.2: refuse when no offered subprotocol is supported.
            text = f"no supported OCPP subprotocol offered; this CSMS supports {SUPPORTED}"
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "subprotocol", text)
        try:
            identity = await self._lookups.get(station_id)
        except Exception:
            logger.exception("identity lookup failed", extra={"station_id": station_id})
            text = "identity store unavailable; retry later"
            return self._refuse(connection, HTTPStatus.SERVICE_UNAVAILABLE, "identity", text)
        if identity is None and self._unknown_station_policy == "reject":
            text = f"unknown station {station_id!r}: register it first (PUT /api/v1/stations/...)"
            return self._refuse_station(
                connection,
                station_id,
                version,
                HTTPStatus.NOT_FOUND,
                RefusalReason.UNKNOWN_STATION,
                text,
            )
        return await self._authorize(connection, request, station_id, version, identity)

    async def _authorize(
        self,
        connection: ServerConnection,
        request: Request,
        station_id: str,
        version: OcppVersion,
        identity: StationIdentity | None,
    ) -> Response | None:
        session = tls_session(connection)
        common_names = certificate_common_names(session) if session is not None else None
        if common_names is not None and common_names != [station_id]:
            return self._certificate_mismatch(connection, station_id, version, common_names)
        password_hash = identity.password_hash if identity is not None else None
        profile = security_profile(
            tls=session is not None,
            certificate=common_names is not None,
            password=password_hash is not None,
        )
        recorded = identity.security_profile if identity is not None else None
        required = max(self._min_security_profile, recorded or 0)
        if profile < required:
            return self._too_weak(connection, station_id, version, profile, required)
        # With a verified client certificate (profile 3) the password is not needed.
        if identity is not None and password_hash is not None and profile < 3:
            used = await self._password_used(request.headers, identity)
            if used is None:
                return self._unauthorized(connection, station_id, version, profile)
            if used == identity.pending_password_hash:
                await self._promote(station_id, used)
        if profile == 0:
            logger.warning(
                "station connects without authentication (security profile 0)",
                extra={"station_id": station_id},
            )
        self.admitted[connection] = Admission(
            station_id=station_id,
            version=version,
            security_profile=profile,
            lenient=identity is not None and identity.lenient,
            remote_address=_remote_address(connection),
            registration=self._registration(identity),
        )
        return None

    def _registration(self, identity: StationIdentity | None) -> str | None:
        if identity is not None:
            return identity.registration_status or ACCEPTED  # registered: accepted
        # Unknown, admitted by the policy: accepted at boot under "accept"; else boot first.
        return ACCEPTED if self._unknown_station_policy == "accept" else None

    async def _password_used(self, headers: Headers, identity: StationIdentity) -> str | None:
        """The stored hash the Basic auth password matches: the current or the staged one."""
        for stored in (identity.password_hash, identity.pending_password_hash):
            if stored is not None and await basic_auth_ok(headers, identity.station_id, stored):
                return stored
        return None

    async def _promote(self, station_id: str, pending_hash: str) -> None:
        # OCPP 2.0.1 A01 / 1.6 whitepaper: the station switched to its new password; the
        # old one stops working now.
        try:
            promoted = await self._identities.promote_pending_password(station_id, pending_hash)
        except Exception:
            logger.exception("could not record the new password", extra={"station_id": station_id})
            return
        if promoted:
            logger.info("station connected with its new password", extra={"station_id": station_id})

    def _certificate_mismatch(
        self,
        connection: ServerConnection,
        station_id: str,
        version: OcppVersion,
        common_names: list[str],
    ) -> Response:
        # OCPP 2.0.1 Part 2 A00 / 1.6 security whitepaper: in profile 3 the certificate's
        # subject commonName is the station's identity, the one in the URL.
        logger.warning(
            "client certificate CN %s refused", common_names, extra={"station_id": station_id}
        )
        owner = ", ".join(repr(name) for name in common_names) or "no common name"
        text = f"the client certificate is for {owner}, not for station {station_id!r}"
        return self._refuse_station(
            connection,
            station_id,
            version,
            HTTPStatus.FORBIDDEN,
            RefusalReason.CERTIFICATE_MISMATCH,
            text,
            offered=3,
        )

    def _too_weak(
        self,
        connection: ServerConnection,
        station_id: str,
        version: OcppVersion,
        profile: int,
        required: int,
    ) -> Response:
        logger.warning(
            "security profile %d refused (%d required)",
            profile,
            required,
            extra={"station_id": station_id},
        )
        whose = "this CSMS" if required == self._min_security_profile else "this station"
        text = (
            f"{whose} requires security profile {required} or higher; "
            f"this connection has profile {profile}"
        )
        return self._refuse_station(
            connection,
            station_id,
            version,
            HTTPStatus.FORBIDDEN,
            RefusalReason.PROFILE_TOO_LOW,
            text,
            offered=profile,
            required=required,
        )

    def _unauthorized(
        self, connection: ServerConnection, station_id: str, version: OcppVersion, profile: int
    ) -> Response:
        logger.warning("basic auth refused", extra={"station_id": station_id})
        text = "HTTP Basic authentication with the station id as username is required"
        response = self._refuse_station(
            connection,
            station_id,
            version,
            HTTPStatus.UNAUTHORIZED,
            RefusalReason.BAD_CREDENTIALS,
            text,
            offered=profile,
        )
        response.headers["WWW-Authenticate"] = 'Basic realm="csms"'
        return response

    def _refuse_station(
        self,
        connection: ServerConnection,
        station_id: str,
        version: OcppVersion,
        status: HTTPStatus,
        reason: RefusalReason,
        text: str,
        *,
        offered: int | None = None,
        required: int | None = None,
    ) -> Response:
        """Refuse and record a security-relevant refusal of ``station_id``."""
        if self._on_refused is not None:
            self._on_refused(
                Refusal(
                    station_id=station_id,
                    reason=reason,
                    status=status.value,
                    detail=text,
                    remote_address=_remote_address(connection),
                    offered_profile=offered,
                    required_profile=required,
                    ocpp_version=version.number,
                )
            )
        return self._refuse(connection, status, reason.value, text)

    def _refuse(
        self, connection: ServerConnection, status: HTTPStatus, reason: str, text: str
    ) -> Response:
        self._metrics.handshakes_refused.labels(reason).inc()
        logger.info("handshake refused: %s %s", status.value, text)
        return connection.respond(status, text + "\n")


def offered_subprotocols(headers: Headers) -> list[str]:
    """Every token of every ``Sec-WebSocket-Protocol`` header."""
    return [
        token.strip()
        for header in headers.get_all("Sec-WebSocket-Protocol")
        for token in header.split(",")
        if token.strip()
    ]


def select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """Echo the offered token of the newest version we speak (ocpp2.1 > 2.0.1 > 1.6)."""
    version = negotiate(list(offered))
    if version is None:
        return None
    return next(token for token in offered if token.strip().lower() == version.value)


def security_profile(*, tls: bool, certificate: bool, password: bool) -> int:
    """OCPP 2.0.1 Part 2 A00: 3 mutual TLS, 2 TLS + Basic auth, 1 Basic auth, 0 none."""
    if certificate:
        return 3
    if password:
        return 2 if tls else 1
    return 0


async def basic_auth_ok(headers: Headers, station_id: str, password_hash: str) -> bool:
    """Security profile 1: Basic auth, username = station id (OCPP 2.0.1 A00.FR.203)."""
    credentials = _basic_credentials(headers.get("Authorization"))
    if credentials is None or credentials[0] != station_id:
        return False
    # PBKDF2 is deliberately slow: keep it off the event loop.
    return await asyncio.to_thread(verify_password, credentials[1], password_hash)


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def _metrics_response(connection: ServerConnection, body: bytes) -> Response:
    response = connection.respond(HTTPStatus.OK, "")
    del response.headers["Content-Type"]
    del response.headers["Content-Length"]
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Content-Length"] = str(len(body))
    return Response(response.status_code, response.reason_phrase, response.headers, body)


def _remote_address(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


def _remote_host(connection: ServerConnection) -> str:
    address = connection.remote_address
    return str(address[0]) if isinstance(address, tuple) else str(address)
