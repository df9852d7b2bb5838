"""Changing the lists we want stations to hold (database only; ``sync`` sends them)."""

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_sessions.db import utc_now
from csms_sessions.local_lists.models import LocalList, LocalListEntry
from csms_sessions.tokens.models import IdToken
from csms_sessions.tokens.service import decide

TokenKey = tuple[str, str]  # (id_token, type)


async def list_of(session: AsyncSession, station_id: str) -> LocalList:
    """The station's list, created empty (version 0, never sent) the first time."""
    local_list = await session.get(LocalList, station_id) or LocalList(station_id=station_id)
    session.add(local_list)
    return local_list


async def entries_of(
    session: AsyncSession, station_id: str, *, include_removed: bool = True
) -> Sequence[LocalListEntry]:
    query = select(LocalListEntry).where(col(LocalListEntry.station_id) == station_id)
    if not include_removed:
        query = query.where(col(LocalListEntry.removed).is_(False))
    order = (col(LocalListEntry.id_token), col(LocalListEntry.type))
    return (await session.exec(query.order_by(*order))).all()


def refresh_entry(entry: LocalListEntry, token: IdToken) -> bool:
    """Make the entry carry the token's current decision at its station; True if it changed."""
    decision = decide(token, station_id=entry.station_id)
    wanted = (
        decision.status.value if decision.status else "Invalid",
        decision.expiry_date,
        decision.group_id,
        list(decision.evse_ids) or None,
        False,
    )
    current = (entry.status, entry.expiry_date, entry.group_id, entry.evse_ids, entry.removed)
    if current == wanted:
        return False
    entry.status, entry.expiry_date, entry.group_id, entry.evse_ids, entry.removed = wanted
    entry.synced = False
    return True


def _new_entry(station_id: str, token: IdToken) -> LocalListEntry:
    entry = LocalListEntry(
        station_id=station_id, id_token=token.id_token, type=token.type, status=""
    )
    refresh_entry(entry, token)
    return entry


def _mark_pending(local_list: LocalList) -> None:
    local_list.pending = True
    local_list.retry_at = None
    local_list.updated_at = utc_now()


async def replace(
    session: AsyncSession, station_id: str, tokens: Sequence[IdToken], group_id: str | None
) -> LocalList:
    """The list becomes exactly ``tokens`` (sent as a Full update)."""
    local_list = await list_of(session, station_id)
    for entry in await entries_of(session, station_id):
        await session.delete(entry)
    await session.flush()
    session.add_all(_new_entry(station_id, token) for token in tokens)
    local_list.group_id = group_id
    local_list.needs_full = True
    _mark_pending(local_list)
    return local_list


async def change(
    session: AsyncSession,
    station_id: str,
    upserts: Sequence[IdToken],
    removals: Sequence[TokenKey],
) -> LocalList:
    """Add or refresh ``upserts`` and take ``removals`` off the list (a Differential update)."""
    local_list = await list_of(session, station_id)
    for token in upserts:
        entry = await session.get(LocalListEntry, (station_id, token.id_token, token.type))
        if entry is None:
            session.add(_new_entry(station_id, token))
        else:
            refresh_entry(entry, token)
    for id_token, token_type in removals:
        entry = await session.get(LocalListEntry, (station_id, id_token, token_type))
        if entry is not None:
            entry.removed, entry.synced = True, False
    _mark_pending(local_list)
    return local_list


async def token_changed(
    session: AsyncSession, id_token: str, token_type: str | None, token: IdToken | None
) -> set[str]:
    """Bring every list holding the token (or whose group it joins) up to date.

    ``token`` is the token as now stored, None if deleted (``token_type`` None: every
    type of it). Returns the stations whose list changed (now pending).
    """
    query = select(LocalListEntry).where(col(LocalListEntry.id_token) == id_token)
    if token_type is not None:
        query = query.where(col(LocalListEntry.type) == token_type)
    changed: set[str] = set()
    for entry in (await session.exec(query)).all():
        lists_group = (await list_of(session, entry.station_id)).group_id
        left_group = token is not None and lists_group is not None and token.group_id != lists_group
        if token is None or left_group:
            if not entry.removed:
                entry.removed, entry.synced = True, False
                changed.add(entry.station_id)
        elif refresh_entry(entry, token):
            changed.add(entry.station_id)
    if token is not None and token.group_id is not None:
        changed |= await _join_group_lists(session, token)
    for station_id in changed:
        _mark_pending(await list_of(session, station_id))
    return changed


async def _join_group_lists(session: AsyncSession, token: IdToken) -> set[str]:
    """Add the token to the lists of its group that do not hold it yet."""
    query = select(LocalList).where(col(LocalList.group_id) == token.group_id)
    joined: set[str] = set()
    for local_list in (await session.exec(query)).all():
        key = (local_list.station_id, token.id_token, token.type)
        if await session.get(LocalListEntry, key) is None:
            session.add(_new_entry(local_list.station_id, token))
            joined.add(local_list.station_id)
    return joined


async def forget_token(session: AsyncSession, station_id: str, id_token: str) -> bool:
    """Take every entry of ``id_token`` (of any type) off the station's list, as a
    Differential update: the station cleared what it kept of that customer (OCPP 2.0.1
    N10, OCTT TC_N_46). True if the list changed (now pending)."""
    query = select(LocalListEntry).where(
        col(LocalListEntry.station_id) == station_id,
        func.lower(col(LocalListEntry.id_token)) == id_token.lower(),  # idToken: any case
        col(LocalListEntry.removed).is_(False),
    )
    entries = (await session.exec(query)).all()
    for entry in entries:
        entry.removed, entry.synced = True, False
    if entries:
        _mark_pending(await list_of(session, station_id))
    return bool(entries)
