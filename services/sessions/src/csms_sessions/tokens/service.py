"""Authorization: one version-neutral decision, written as 1.6 idTagInfo or 2.x idTokenInfo.

Lookup: a 2.x idToken matches its exact (id_token, type) row, else a row of
type ``idTag``; a 1.6 idTag (which has no type) matches its ``idTag`` row,
else a row of any type with that id, so one RFID card registered once works
on stations of both versions.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_sessions.db import ocpp_time, utc_now
from csms_sessions.tokens.models import ID_TAG, IdToken, TokenStatus

# OCPP 2.0.1 IdTokenEnumType NoAuthorization: the station asks no identification (free
# charging); there is nothing to look up.
NO_AUTHORIZATION = "NoAuthorization"
# 2.0.1 requires a type for groupIdToken; a group is a CSMS-side notion.
GROUP_TOKEN_TYPE = "Central"  # noqa: S105 - a token type, not a secret
# OCPP 1.6 §7.2 AuthorizationStatus; a 2.x-only status is Invalid to a 1.6 station.
_V16_STATUSES = frozenset({"Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"})


@dataclass(frozen=True, slots=True)
class Authorization:
    """The decision about one token; ``status`` None means the token is unknown."""

    status: TokenStatus | None
    expiry_date: datetime | None = None
    group_id: str | None = None
    # 2.x idTokenInfo.evseId: the EVSEs the token is restricted to, if any.
    evse_ids: tuple[int, ...] = ()


async def authorize(
    session: AsyncSession,
    id_token: str,
    token_type: str | None,
    *,
    station_id: str | None = None,
    evse_id: int | None = None,
) -> Authorization:
    """Decide on a token; ``token_type`` None for a 1.6 idTag.

    With ``station_id`` (and ``evse_id``), a token restricted to other stations or
    EVSEs is NotAtThisLocation (OCPP 2.0.1 AuthorizationStatusEnumType; 1.6 Invalid).
    """
    if token_type == NO_AUTHORIZATION:
        return Authorization(TokenStatus.ACCEPTED)
    token = await find_token(session, id_token, token_type)
    if token is None:
        return Authorization(None)
    return decide(token, station_id=station_id, evse_id=evse_id)


def decide(token: IdToken, *, station_id: str | None, evse_id: int | None = None) -> Authorization:
    """The decision about a stored token at a station (None: anywhere) and EVSE."""
    status = token.status
    if status is TokenStatus.ACCEPTED and token.expiry_date and token.expiry_date <= utc_now():
        status = TokenStatus.EXPIRED
    elif status is TokenStatus.ACCEPTED and not allowed_at(token, station_id, evse_id):
        status = TokenStatus.NOT_AT_THIS_LOCATION
    evse_ids = tuple(token.allowed_evse_ids or ())
    return Authorization(status, token.expiry_date, token.group_id, evse_ids)


def allowed_at(token: IdToken, station_id: str | None, evse_id: int | None) -> bool:
    """Whether the token's restrictions let it charge at this station and EVSE."""
    stations = token.allowed_station_ids
    if station_id is not None and stations is not None and station_id not in stations:
        return False
    if evse_id is not None and token.allowed_evse_ids:
        return evse_id in token.allowed_evse_ids
    return True


async def find_token(
    session: AsyncSession, id_token: str, token_type: str | None
) -> IdToken | None:
    """The stored token a presented one matches (see the module docstring)."""
    rows = (await session.exec(select(IdToken).where(col(IdToken.id_token) == id_token))).all()
    by_type = {row.type: row for row in rows}
    preferred = [token_type, ID_TAG] if token_type else [ID_TAG, *sorted(by_type)]
    return next((by_type[kind] for kind in preferred if kind in by_type), None)


def id_tag_info(decision: Authorization) -> dict[str, Any]:
    """OCPP 1.6 IdTagInfo; an unknown idTag is Invalid (1.6 §7.2 AuthorizationStatus)."""
    status = decision.status.value if decision.status else "Invalid"
    info: dict[str, Any] = {"status": status if status in _V16_STATUSES else "Invalid"}
    if decision.status is TokenStatus.ACCEPTED and decision.expiry_date:
        info["expiryDate"] = ocpp_time(decision.expiry_date)
    if decision.group_id:
        info["parentIdTag"] = decision.group_id[:20]  # IdToken is CiString20Type
    return info


def id_token_info(decision: Authorization) -> dict[str, Any]:
    """OCPP 2.x IdTokenInfoType; an unknown idToken is Unknown (2.0.1 C01)."""
    info: dict[str, Any] = {"status": decision.status.value if decision.status else "Unknown"}
    if decision.status is TokenStatus.ACCEPTED and decision.expiry_date:
        info["cacheExpiryDateTime"] = ocpp_time(decision.expiry_date)
    if decision.group_id:
        info["groupIdToken"] = {"idToken": decision.group_id[:36], "type": GROUP_TOKEN_TYPE}
    if decision.evse_ids:
        info["evseId"] = list(decision.evse_ids)
    return info
