"""How one station of a campaign moves: answers to UpdateFirmware, status notifications,
its next boot, silence. Every change of state is a ``firmware.station.state_changed`` event.
"""

from datetime import datetime, timedelta

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.events.firmware import (
    CampaignStateChangedData,
    CampaignStationStateChangedData,
    FirmwareStatusReportedData,
)
from csms_firmware.campaigns.models import Campaign, CampaignStation, StatusRecord
from csms_firmware.campaigns.plan import RolloutPlan
from csms_firmware.campaigns.states import (
    ACCEPTED_ANSWERS,
    FINAL_FAILURES,
    FINAL_REFUSALS,
    IN_FLIGHT,
    PROGRESS,
    RETRYABLE_FAILURES,
    TERMINAL,
    CampaignState,
    StationState,
)
from csms_firmware.catalogue.models import FirmwareImage
from csms_firmware.db import utc_now
from csms_firmware.outbox import emit
from csms_firmware.stations.models import FirmwareStation


def move(
    session: AsyncSession,
    row: CampaignStation,
    state: StationState,
    *,
    reason: str | None = None,
    firmware_version: str | None = None,
) -> None:
    """Put ``row`` in ``state`` (an event if that is a change)."""
    changed = row.state is not state
    row.state, row.reason = state, reason if reason is not None else row.reason
    if state in TERMINAL:
        row.active, row.finished_at = False, utc_now()
    session.add(row)
    if changed:
        emit(
            session,
            CampaignStationStateChangedData(
                campaign_id=row.campaign_id,
                station_id=row.station_id,
                state=state,
                ocpp_status=row.ocpp_status,
                attempt=row.attempt,
                request_id=row.request_id,
                reason=row.reason,
                firmware_version=firmware_version,
            ),
            station_id=row.station_id,
        )


def attempt_failed(
    session: AsyncSession, row: CampaignStation, plan: RolloutPlan, reason: str, *, final: bool
) -> None:
    """Another attempt after the retry delay, or failed for good."""
    if not final and row.attempt <= plan.retries:
        row.retry_at = utc_now() + timedelta(seconds=plan.retry_delay_s)
        row.triggered = False
        move(session, row, StationState.PENDING, reason=f"attempt {row.attempt}: {reason}")
    else:
        move(session, row, StationState.FAILED, reason=reason)


async def plan_of(session: AsyncSession, campaign_id: str) -> RolloutPlan:
    campaign = await session.get(Campaign, campaign_id)
    assert campaign is not None  # noqa: S101 - a row's campaign is never deleted
    return RolloutPlan.model_validate(campaign.plan)


def record_answer(
    session: AsyncSession,
    row: CampaignStation,
    plan: RolloutPlan,
    status: str | None,
    failure: str | None,
) -> None:
    """The station's answer to UpdateFirmware / SignedUpdateFirmware (``status`` None and no
    ``failure``: the empty 1.6 UpdateFirmware.conf, an acceptance)."""
    row.last_activity_at = utc_now()
    if failure is not None:
        attempt_failed(session, row, plan, failure, final=False)
    elif status is None or status in ACCEPTED_ANSWERS:
        if row.state == StationState.DISPATCHING:
            # A station may report Downloading before its answer is read (another topic):
            # the acceptance then never moves the row back.
            row.ocpp_status = status or "Accepted"
            move(session, row, StationState.SENT)
    else:
        row.ocpp_status = status
        attempt_failed(
            session, row, plan, f"the station answered {status}", final=status in FINAL_REFUSALS
        )


# A station's row is moved by its answer (the campaign runner) and by its status reports
# (the consumer) in transactions of their own, which may overlap: each reads the row
# FOR UPDATE, so the second waits for the first and sees what it wrote (without the lock,
# an Accepted read after a Downloading moved the row back to "sent").


async def dispatched_row(
    session: AsyncSession, campaign_id: str, station_id: str, request_id: int
) -> CampaignStation | None:
    """The row an UpdateFirmware answer of ``request_id`` moves: still dispatching (a status
    that came first moved it on already: keep that)."""
    row = await session.get(CampaignStation, (campaign_id, station_id), with_for_update=True)
    if row is None or row.request_id != request_id:
        return None
    return row if row.state is StationState.DISPATCHING else None


async def _active_row(session: AsyncSession, station_id: str) -> CampaignStation | None:
    query = select(CampaignStation).where(
        CampaignStation.station_id == station_id, col(CampaignStation.active)
    )
    return (await session.exec(query.with_for_update())).first()


async def _row_for(
    session: AsyncSession, station_id: str, request_id: int | None
) -> CampaignStation | None:
    if request_id is None:
        # 1.6 has no requestId; 2.x omits it when answering a trigger (L01.FR.20).
        return await _active_row(session, station_id)
    query = select(CampaignStation).where(
        CampaignStation.station_id == station_id, CampaignStation.request_id == request_id
    )
    return (await session.exec(query.with_for_update())).first()


async def repeated(
    session: AsyncSession, kind: str, station_id: str, status: str, request_id: int | None
) -> bool:
    """The station said exactly this last time already."""
    last = (
        await session.exec(
            select(StatusRecord)
            .where(StatusRecord.station_id == station_id, StatusRecord.kind == kind)
            .order_by(col(StatusRecord.id).desc())
            .limit(1)
        )
    ).first()
    return last is not None and last.status == status and last.request_id == request_id


async def on_firmware_status(
    session: AsyncSession,
    station_id: str,
    status: str,
    request_id: int | None,
    received_at: datetime,
) -> bool:
    """A (Signed)FirmwareStatusNotification the gateway received at ``received_at``; True
    if a campaign station changed."""
    row = await _row_for(session, station_id, request_id)
    if await repeated(session, "firmware", station_id, status, request_id):
        # Said before, so neither recorded nor reported again; but the station spoke: a
        # busy, slow station answering a trigger with the status it had (a 1.6 station's
        # "Downloading" carries no request id to tell it apart) is no silent one.
        if row is None or not row.active or row.state not in IN_FLIGHT:
            return False
        return await _progress(session, row, status, received_at)
    campaign_id = row.campaign_id if row is not None else None
    session.add(
        StatusRecord(
            station_id=station_id,
            kind="firmware",
            status=status,
            request_id=request_id,
            campaign_id=campaign_id,
            reported_at=received_at,
        )
    )
    emit(
        session,
        FirmwareStatusReportedData(
            station_id=station_id,
            status=status,
            request_id=request_id,
            campaign_id=campaign_id,
            reported_at=received_at,
        ),
        station_id=station_id,
    )
    if row is None or not row.active or row.state not in IN_FLIGHT:
        return False
    return await _progress(session, row, status, received_at)


def _heard(row: CampaignStation, received_at: datetime) -> None:
    """The station spoke at ``received_at``: its silence is counted from then (never back
    before what was heard already, e.g. a late status of an earlier attempt)."""
    last = row.last_activity_at
    row.last_activity_at = received_at if last is None else max(last, received_at)


async def _progress(
    session: AsyncSession, row: CampaignStation, status: str, received_at: datetime
) -> bool:
    plan = await plan_of(session, row.campaign_id)
    if status == "Idle":
        if not row.triggered:
            return False
        # Asked for its status, it has no update under way: this attempt is lost.
        row.ocpp_status = status
        _heard(row, received_at)
        attempt_failed(session, row, plan, "the station is idle: no update under way", final=False)
        return True
    row.ocpp_status, row.triggered = status, False
    _heard(row, received_at)
    if status in PROGRESS:
        move(session, row, PROGRESS[status])
    elif status in RETRYABLE_FAILURES or status in FINAL_FAILURES:
        attempt_failed(session, row, plan, status, final=status in FINAL_FAILURES)
    else:
        session.add(row)
    return True


def may_have_installed(row: CampaignStation) -> bool:
    """An UpdateFirmware went out in the row's last attempt, and the station's last word on
    it (if any) was an acceptance or progress, not a refusal or a failure."""
    return row.attempt > 0 and (
        row.ocpp_status is None
        or row.ocpp_status in ACCEPTED_ANSWERS
        or row.ocpp_status in PROGRESS
    )


async def on_boot(
    session: AsyncSession, station: FirmwareStation, previous_boot_at: datetime | None = None
) -> bool:
    """A BootNotification: only it confirms the new version (True if a row changed).
    ``previous_boot_at`` is when the station booted before this boot (None: never)."""
    row = await _active_row(session, station.station_id)
    if row is None:
        return await _late_confirmation(session, station, previous_boot_at)
    campaign = await session.get(Campaign, row.campaign_id)
    image = await session.get(FirmwareImage, campaign.image_id) if campaign else None
    if image is None:
        return False
    version = station.firmware_version
    if version == image.version:
        # Waiting for a retry after an attempt that may have installed (it went quiet while
        # rebooting, say): that attempt did it.
        skipped = row.state is StationState.PENDING and not may_have_installed(row)
        done = StationState.SKIPPED if skipped else StationState.SUCCEEDED
        reason = "already on this version" if skipped else None
        move(session, row, done, reason=reason, firmware_version=version)
        return True
    if row.state is StationState.INSTALLING:
        plan = RolloutPlan.model_validate(campaign.plan) if campaign else RolloutPlan()
        attempt_failed(
            session, row, plan, f"booted with {version}, not {image.version}", final=False
        )
        return True
    return False


async def _late_confirmation(
    session: AsyncSession, station: FirmwareStation, previous_boot_at: datetime | None
) -> bool:
    """The station's next boot after it was failed (out of retries) while its install may
    have been under way, silent while it rebooted for longer than the silence timeout,
    say: reporting the campaign image's version, it succeeded after all. Only its latest
    campaign row, and only its first boot since that failure."""
    row = (
        await session.exec(
            select(CampaignStation)
            .where(
                CampaignStation.station_id == station.station_id,
                col(CampaignStation.finished_at).is_not(None),
            )
            .order_by(col(CampaignStation.finished_at).desc())
            .limit(1)
        )
    ).first()
    if row is None or row.state is not StationState.FAILED or not may_have_installed(row):
        return False
    assert row.finished_at is not None  # noqa: S101 - selected on it
    if previous_boot_at is not None and previous_boot_at >= row.finished_at:
        return False  # it booted since it failed: this is not the boot after the install
    campaign = await session.get(Campaign, row.campaign_id)
    image = await session.get(FirmwareImage, campaign.image_id) if campaign else None
    if campaign is None or image is None or station.firmware_version != image.version:
        return False
    # A failure counted before the last start or resume is in failed_at_resume: taken out
    # of it there, so the threshold judges the stations since the resume as it did.
    counted = campaign.resumed_at is None or row.finished_at <= campaign.resumed_at
    if counted and campaign.failed_at_resume > 0:
        campaign.failed_at_resume -= 1
        session.add(campaign)
    move(
        session,
        row,
        StationState.SUCCEEDED,
        reason=f"confirmed by its boot after it had failed ({row.reason})",
        firmware_version=station.firmware_version,
    )
    return True


async def counts(session: AsyncSession, campaign_id: str) -> dict[StationState, int]:
    rows = await session.exec(
        select(CampaignStation.state, func.count())
        .where(CampaignStation.campaign_id == campaign_id)
        .group_by(CampaignStation.state)
    )
    return {StationState(state): number for state, number in rows}


async def set_campaign_state(
    session: AsyncSession, campaign: Campaign, state: CampaignState, reason: str | None = None
) -> None:
    now = utc_now()
    campaign.state, campaign.state_reason = state, reason
    if state is CampaignState.RUNNING:
        campaign.started_at = campaign.started_at or now
        campaign.resumed_at = now
        tally = await counts(session, campaign.campaign_id)
        campaign.failed_at_resume = tally.get(StationState.FAILED, 0)
        campaign.finished_at_resume = campaign.failed_at_resume + tally.get(
            StationState.SUCCEEDED, 0
        )
    if state in (CampaignState.CANCELLED, CampaignState.COMPLETED):
        campaign.finished_at = now
    session.add(campaign)
    image = await session.get(FirmwareImage, campaign.image_id)
    emit(
        session,
        CampaignStateChangedData(
            campaign_id=campaign.campaign_id,
            image_id=campaign.image_id,
            version=image.version if image else "",
            state=state,
            reason=reason,
            counts=await counts(session, campaign.campaign_id),
        ),
        station_id=f"campaign:{campaign.campaign_id}",
    )
