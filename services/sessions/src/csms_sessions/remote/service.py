"""Remote starts allocated and recorded; a charging session resolved to its transaction id."""

import logging
from datetime import datetime, timedelta

from sqlalchemy import String, column, or_, table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.problems import Problem
from csms_core.db import transaction
from csms_sessions.db import SCHEMA
from csms_sessions.remote.models import RemoteStart
from csms_sessions.remote.translate import RemoteStartCommand

logger = logging.getLogger(__name__)

# The columns this domain reads of the transactions domain's table.
CHARGING_SESSION = table(
    "charging_session",
    column("session_id", String),
    column("station_id", String),
    column("transaction_id", String),
    schema=SCHEMA,
)


async def allocate_remote_start(
    factory: async_sessionmaker[AsyncSession], station_id: str, command: RemoteStartCommand
) -> RemoteStart:
    """Record the request before sending it: its id is the remoteStartId on the wire."""
    async with transaction(factory) as session:
        request = RemoteStart(
            station_id=station_id,
            id_token=command.id_token,
            token_type=command.token_type,
            evse_id=command.evse_id,
        )
        session.add(request)
        await session.flush()
    return request


# OCPP 1.6 §5.11: a RemoteStartTransaction names no transaction; the StartTransaction that
# follows with the same idTag on the same connector within this window is the one it started.
V16_LINK_WINDOW = timedelta(minutes=10)


async def link_session(
    session: AsyncSession, station_id: str, remote_start_id: int, session_id: str
) -> RemoteStart | None:
    """The request of a 2.x remoteStartId, linked to the session it started."""
    request = await session.get(RemoteStart, remote_start_id)
    if request is None or request.station_id != station_id:
        return None
    request.session_id = request.session_id or session_id
    return request


async def link_session_v16(
    session: AsyncSession,
    station_id: str,
    id_tag: str,
    evse_id: int,
    received_at: datetime,
    session_id: str,
) -> RemoteStart | None:
    """The oldest open 1.6 remote start for this idTag and connector, linked to the session."""
    query = (
        select(RemoteStart)
        .where(
            col(RemoteStart.station_id) == station_id,
            col(RemoteStart.id_token) == id_tag,
            col(RemoteStart.session_id).is_(None),
            or_(col(RemoteStart.evse_id).is_(None), col(RemoteStart.evse_id) == evse_id),
            or_(col(RemoteStart.status).is_(None), col(RemoteStart.status) == "Accepted"),
            col(RemoteStart.requested_at) >= received_at - V16_LINK_WINDOW,
            col(RemoteStart.requested_at) <= received_at,
        )
        .order_by(col(RemoteStart.requested_at))
        .limit(1)
    )
    request = (await session.exec(query)).first()
    if request is not None:
        request.session_id = session_id
    return request


async def record_answer(
    factory: async_sessionmaker[AsyncSession], request: RemoteStart, status: str | None
) -> None:
    async with transaction(factory) as session:
        request.status = status
        await session.merge(request)


async def transaction_of_session(
    factory: async_sessionmaker[AsyncSession], station_id: str, session_id: str
) -> str:
    """The OCPP transaction id of a charging session of this station.

    The table belongs to the transactions domain (``sessions.charging_session``);
    only its columns named here are read, so this domain does not depend on its models.
    """
    query = select(CHARGING_SESSION.c.transaction_id).where(
        CHARGING_SESSION.c.session_id == session_id, CHARGING_SESSION.c.station_id == station_id
    )
    try:
        async with factory() as session:
            row = (await session.exec(query)).first()
    except DBAPIError as exc:
        logger.warning("charging sessions cannot be read: %s", exc)
        raise Problem(
            422, "stopping by session_id is not available; give transaction_id", kind="no-sessions"
        ) from None
    if row is None:
        raise Problem(
            404, f"no charging session {session_id} on {station_id}", kind="unknown-session"
        )
    return str(row)
