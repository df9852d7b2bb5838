"""Creating campaigns (every bad request refused before anything is stored) and steering them."""

from datetime import datetime
from uuid import uuid4

from sqlalchemy import ColumnElement, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from csms_api.problems import Problem
from csms_firmware.campaigns import progress
from csms_firmware.campaigns.models import Campaign, CampaignStation
from csms_firmware.campaigns.planner import StationProgress, assign_waves, current_wave
from csms_firmware.campaigns.schemas import CampaignIn, CampaignOut, Target
from csms_firmware.campaigns.states import TERMINAL, CampaignState, StationState
from csms_firmware.campaigns.window import UTC_ZONE, next_opening
from csms_firmware.catalogue.models import FirmwareImage
from csms_firmware.db import utc_now
from csms_firmware.stations.models import FirmwareStation, Site

LISTED = 20  # station ids named in a problem's detail


def _names(ids: list[str]) -> str:
    more = f" and {len(ids) - LISTED} more" if len(ids) > LISTED else ""
    return ", ".join(ids[:LISTED]) + more


async def _image(session: AsyncSession, image_id: str) -> FirmwareImage:
    image = await session.get(FirmwareImage, image_id)
    if image is None:
        raise Problem(404, f"no firmware image {image_id}", kind="unknown-image")
    return image


def _compatible(image: FirmwareImage) -> list[ColumnElement[bool]]:
    return [
        col(FirmwareStation.vendor) == image.vendor,
        col(FirmwareStation.model).in_(image.models),
    ]


async def resolve_target(
    session: AsyncSession,
    image: FirmwareImage,
    target: Target,
    visible: SelectOfScalar[str] | None = None,
) -> list[FirmwareStation]:
    """The target's stations (among ``visible`` ones, when given); explicit ids must all be
    known and fit the image."""
    only = [] if visible is None else [col(FirmwareStation.station_id).in_(visible)]
    if target.is_filter:
        query = select(FirmwareStation).where(*_compatible(image), *only)
        for column, value in (
            (FirmwareStation.vendor, target.vendor),
            (FirmwareStation.model, target.model),
            (FirmwareStation.firmware_version, target.firmware_version),
            (FirmwareStation.site_id, target.site_id),
        ):
            if value is not None:
                query = query.where(col(column) == value)
        return list(await session.exec(query.order_by(col(FirmwareStation.station_id))))
    wanted = list(dict.fromkeys(target.station_ids or []))
    found = {
        s.station_id: s
        for s in await session.exec(
            select(FirmwareStation).where(col(FirmwareStation.station_id).in_(wanted), *only)
        )
    }
    unknown = [station_id for station_id in wanted if station_id not in found]
    if unknown:
        raise Problem(
            422,
            f"{len(unknown)} stations are unknown (never booted, so their model is unknown, "
            f"or not on the caller's sites): {_names(unknown)}",
            kind="unknown-stations",
            station_ids=unknown[:100],
        )
    misfits = [
        s.station_id
        for s in found.values()
        if s.vendor != image.vendor or s.model not in image.models
    ]
    if misfits:
        raise Problem(
            422,
            f"the image is for {image.vendor} {', '.join(image.models)}; these stations are "
            f"not: {_names(misfits)}",
            kind="incompatible-stations",
            station_ids=misfits[:100],
        )
    return [found[station_id] for station_id in wanted]


async def station_zones(session: AsyncSession, stations: list[FirmwareStation]) -> dict[str, str]:
    """Each station's time zone: its site's, UTC without one."""
    sites = {site.site_id: site.timezone for site in await session.exec(select(Site))}
    return {s.station_id: sites.get(s.site_id or "", UTC_ZONE) for s in stations}


def _check_window(body: CampaignIn, zones: set[str], now: datetime) -> None:
    starts = max(now, body.starts_at or now)
    if body.ends_at is not None and body.ends_at <= starts:
        raise Problem(
            422,
            "ends_at is before the campaign could start: it would never send anything",
            kind="window-never-opens",
        )
    window = body.plan.window
    if window is None:
        return
    if window.timezone is not None:
        zones = {window.timezone}
    closed = sorted(z for z in zones if next_opening(window, z, starts, body.ends_at) is None)
    if closed:
        raise Problem(
            422,
            f"the window {window.start:%H:%M}-{window.end:%H:%M} never opens "
            f"(in {', '.join(closed)}) before the campaign ends",
            kind="window-never-opens",
            timezones=closed,
        )


async def _refuse_busy(session: AsyncSession, station_ids: list[str]) -> None:
    busy: dict[str, str] = {}
    for chunk in range(0, len(station_ids), 1000):
        rows = await session.exec(
            select(CampaignStation.station_id, CampaignStation.campaign_id).where(
                col(CampaignStation.active),
                col(CampaignStation.station_id).in_(station_ids[chunk : chunk + 1000]),
            )
        )
        busy.update(dict(rows.all()))
    if busy:
        ids = sorted(busy)
        raise Problem(
            409,
            f"{len(ids)} stations are in another campaign already: {_names(ids)}",
            kind="station-in-campaign",
            stations={station_id: busy[station_id] for station_id in ids[:100]},
        )


async def create(
    session: AsyncSession, body: CampaignIn, visible: SelectOfScalar[str] | None = None
) -> Campaign:
    """A campaign for ``body`` over the stations it targets (among ``visible`` ones)."""
    image = await _image(session, body.image_id)
    stations = await resolve_target(session, image, body.target, visible)
    if not stations:
        raise Problem(
            422,
            f"no station matches the target among {image.vendor} {', '.join(image.models)} "
            "stations that booted",
            kind="empty-target",
        )
    zones = await station_zones(session, stations)
    now = utc_now()
    _check_window(body, set(zones.values()), now)
    await _refuse_busy(session, [s.station_id for s in stations])
    campaign = Campaign(
        campaign_id=uuid4().hex,
        name=body.name,
        image_id=image.image_id,
        target=body.target.model_dump(mode="json", exclude_none=True),
        plan=body.plan.model_dump(mode="json"),
        state=CampaignState.SCHEDULED,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    session.add(campaign)
    by_id = {s.station_id: s for s in stations}
    length = body.plan.wave_length(len(stations))
    for station_id, wave, position in assign_waves(list(by_id), length):
        current = by_id[station_id].firmware_version == image.version
        session.add(
            CampaignStation(
                campaign_id=campaign.campaign_id,
                station_id=station_id,
                wave=wave,
                position=position,
                state=StationState.SKIPPED if current else StationState.PENDING,
                active=not current,
                from_version=by_id[station_id].firmware_version,
                reason="already on this version" if current else None,
                finished_at=now if current else None,
            )
        )
    try:
        await session.flush()
    except IntegrityError as exc:  # another campaign took a station meanwhile
        raise Problem(
            409,
            "a station of the target joined another campaign meanwhile; try again",
            kind="station-in-campaign",
        ) from exc
    if body.starts_at is None or body.starts_at <= now:
        await progress.set_campaign_state(session, campaign, CampaignState.RUNNING)
    else:
        await progress.set_campaign_state(session, campaign, CampaignState.SCHEDULED)
    return campaign


async def get(session: AsyncSession, campaign_id: str, *, lock: bool = False) -> Campaign:
    query = select(Campaign).where(Campaign.campaign_id == campaign_id)
    if lock:
        query = query.with_for_update()
    campaign = (await session.exec(query)).first()
    if campaign is None:
        raise Problem(404, f"no campaign {campaign_id}", kind="unknown-campaign")
    return campaign


def _refuse(campaign: Campaign, action: str, allowed: tuple[CampaignState, ...]) -> None:
    if campaign.state not in allowed:
        raise Problem(
            409,
            f"a {campaign.state.value} campaign cannot be {action}",
            kind="campaign-state",
            state=campaign.state.value,
        )


async def pause(session: AsyncSession, campaign_id: str) -> Campaign:
    campaign = await get(session, campaign_id, lock=True)
    _refuse(campaign, "paused", (CampaignState.RUNNING, CampaignState.SCHEDULED))
    await progress.set_campaign_state(session, campaign, CampaignState.PAUSED, "by an operator")
    return campaign


async def resume(session: AsyncSession, campaign_id: str) -> Campaign:
    campaign = await get(session, campaign_id, lock=True)
    _refuse(campaign, "resumed", (CampaignState.PAUSED,))
    await progress.set_campaign_state(session, campaign, CampaignState.RUNNING, "resumed")
    return campaign


async def cancel(session: AsyncSession, campaign_id: str) -> Campaign:
    """Nothing more is sent; stations mid-update finish on their own (their boot still
    reports what they run) and are free for another campaign at once."""
    campaign = await get(session, campaign_id, lock=True)
    _refuse(
        campaign,
        "cancelled",
        (CampaignState.RUNNING, CampaignState.SCHEDULED, CampaignState.PAUSED),
    )
    rows = await session.exec(
        select(CampaignStation).where(
            CampaignStation.campaign_id == campaign_id, col(CampaignStation.active)
        )
    )
    for row in rows:
        reason = (
            "campaign cancelled"
            if row.state is StationState.PENDING
            else "campaign cancelled while the station was updating"
        )
        progress.move(session, row, StationState.CANCELLED, reason=reason)
    await progress.set_campaign_state(session, campaign, CampaignState.CANCELLED, "by an operator")
    return campaign


async def view(session: AsyncSession, campaign: Campaign) -> CampaignOut:
    image = await session.get(FirmwareImage, campaign.image_id)
    rows = [
        (wave, StationState(state))
        for wave, state in await session.exec(
            select(CampaignStation.wave, CampaignStation.state).where(
                CampaignStation.campaign_id == campaign.campaign_id
            )
        )
    ]
    tally: dict[StationState, int] = {}
    for _, state in rows:
        tally[state] = tally.get(state, 0) + 1
    snapshot = [
        StationProgress(station_id="", wave=wave, position=0, state=state, online=True)
        for wave, state in rows
        if state not in TERMINAL
    ]
    waves = 1 + max((wave for wave, _ in rows), default=-1)
    return CampaignOut.of(
        campaign, image.version if image else "", tally, waves, current_wave(snapshot)
    )


async def release_stations(session: AsyncSession, campaign_id: str) -> None:
    """A finished campaign holds no station any more."""
    await session.exec(
        update(CampaignStation)
        .where(col(CampaignStation.campaign_id) == campaign_id)
        .values(active=False)
    )
