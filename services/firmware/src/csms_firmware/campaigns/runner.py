"""Running campaigns: plan each one, send what the plan says, record what the stations answer.

One round per campaign: under a row lock on the campaign (a replica that finds it
locked skips it), the planner's decision is stored first (stations marked dispatching
with their request ids, quiet attempts failed, a pause or the end); only then do the
commands go out, and their answers are recorded in a transaction each. A crash in
between leaves stations dispatching, which their silence timeout settles.

The round also claims its stations' rows (``FOR UPDATE SKIP LOCKED``, in the transaction
that stores the decision): a row another transaction holds at that moment (the consumer
recording a status, an answer being recorded, on this replica or another) is planned with
as last committed, but not acted on in this round; the round after it, woken at once, sees
what that transaction wrote. Without the claim a round read a row, the status moved it on,
and the round's write undid the status (a station downloading marked silent, then sent
the update again). SQLite has no row locks: there every row is the round's (one writer).
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.db import session_factory, transaction
from csms_core.router import StationOffline
from csms_firmware import position
from csms_firmware.campaigns import progress
from csms_firmware.campaigns.models import Campaign, CampaignStation
from csms_firmware.campaigns.plan import RolloutPlan
from csms_firmware.campaigns.planner import CampaignSnapshot, Decision, StationProgress, plan
from csms_firmware.campaigns.service import release_stations
from csms_firmware.campaigns.states import DOWNLOAD_SLOT, CampaignState, StationState
from csms_firmware.catalogue.models import FirmwareImage
from csms_firmware.catalogue.service import new_download_link
from csms_firmware.commands import Answer, InvalidOwnPayload, StationCommands
from csms_firmware.db import utc_now
from csms_firmware.models import StationRequest
from csms_firmware.outbox import OutboxPublisher
from csms_firmware.settings import FirmwareSettings
from csms_firmware.stations.models import FirmwareStation, Site
from csms_firmware.wire import FirmwareUpdate, trigger_firmware_status, update_firmware

logger = logging.getLogger(__name__)

updates_sent = Counter(
    "csms_firmware_updates_total",
    "UpdateFirmware / SignedUpdateFirmware sent, by outcome",
    ["outcome"],
)
downloads_in_progress = Gauge(
    "csms_firmware_downloads_in_progress", "stations holding a download slot, all campaigns"
)
MIN_ROUND_S = 0.2  # rounds triggered by events are at least this far apart
NOT_IMPLEMENTED = frozenset({"NotImplemented", "NotSupported"})
LIVE = (CampaignState.SCHEDULED, CampaignState.RUNNING, CampaignState.PAUSED)


@dataclass(frozen=True, slots=True)
class Dispatch:
    campaign_id: str
    station_id: str
    request_id: int
    update: FirmwareUpdate


class CampaignRunner:
    def __init__(
        self,
        settings: FirmwareSettings,
        engine: AsyncEngine,
        commands: StationCommands,
        outbox: OutboxPublisher,
    ) -> None:
        self._settings = settings
        self._factory = session_factory(engine)
        self._commands = commands
        self._outbox = outbox
        self._wake = asyncio.Event()
        # One round at a time in this process (SQLite has no row locks to serialise them).
        self._round = asyncio.Lock()
        self.peak_downloads = 0

    def wake(self) -> None:
        """Something changed (a status, a connection, a REST call): plan again soon."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self._wake.clear()
            wake_at = None
            try:
                wake_at = await self.round()
            except Exception:
                logger.warning("campaign round failed; retrying", exc_info=True)
            timeout = self._settings.campaign_tick_s
            if wake_at is not None:
                timeout = min(timeout, max(0.0, (wake_at - utc_now()).total_seconds()))
            await _first_of(self._wake, stopping, timeout)
            await asyncio.sleep(MIN_ROUND_S)

    async def round(self, now: datetime | None = None) -> datetime | None:
        """Plan and act on every live campaign once; return when to look again."""
        async with self._round:
            return await self._round_locked(now)

    async def _round_locked(self, now: datetime | None) -> datetime | None:
        async with self._factory() as session:
            ids = list(
                await session.exec(
                    select(Campaign.campaign_id).where(col(Campaign.state).in_(LIVE))
                )
            )
            # Stations are heard up to where the consumer has read, not up to now.
            now = now or utc_now()
            heard_until = now - await position.lag(session, now)
        wake_at: datetime | None = None
        for campaign_id in ids:
            due = await self.tick(campaign_id, now, heard_until)
            if due is not None and (wake_at is None or due < wake_at):
                wake_at = due
        return wake_at

    async def tick(
        self, campaign_id: str, now: datetime | None = None, heard_until: datetime | None = None
    ) -> datetime | None:
        """One round of one campaign at ``now``; its stations' silence is judged up to
        ``heard_until`` (where the consumer has read; ``now`` when it is caught up)."""
        now = now or utc_now()
        async with transaction(self._factory) as session:
            campaign = (
                await session.exec(
                    select(Campaign)
                    .where(Campaign.campaign_id == campaign_id, col(Campaign.state).in_(LIVE))
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if campaign is None:
                return None
            if campaign.state is CampaignState.SCHEDULED and (
                campaign.starts_at is None or campaign.starts_at <= now
            ):
                await progress.set_campaign_state(session, campaign, CampaignState.RUNNING)
            rows, busy = await _claim_rows(session, campaign_id)
            snapshot = await self._snapshot(session, campaign, heard_until)
            decision = plan(snapshot, await self._progress(session, rows), now)
            if busy:
                logger.debug(
                    "campaign %s: %d stations changing meanwhile, left to the next round",
                    campaign_id,
                    len(busy),
                )
                decision = _leaving(decision, busy, now)
            dispatches, triggers = await self._apply(session, campaign, rows, decision, now)
        self._outbox.poke()
        await asyncio.gather(
            *(self._send(dispatch) for dispatch in dispatches),
            *(self._trigger(station_id) for station_id in triggers),
        )
        if dispatches:
            self._outbox.poke()
        return decision.wake_at

    async def _snapshot(
        self, session: AsyncSession, campaign: Campaign, heard_until: datetime | None
    ) -> CampaignSnapshot:
        tally = await progress.counts(session, campaign.campaign_id)
        failed = tally.get(StationState.FAILED, 0)
        finished = failed + tally.get(StationState.SUCCEEDED, 0)
        return CampaignSnapshot(
            plan=RolloutPlan.model_validate(campaign.plan),
            running=campaign.state is CampaignState.RUNNING,
            failed_since_resume=failed - campaign.failed_at_resume,
            finished_since_resume=finished - campaign.finished_at_resume,
            ends_at=campaign.ends_at,
            heard_until=heard_until,
        )

    async def _progress(
        self, session: AsyncSession, rows: list[CampaignStation]
    ) -> list[StationProgress]:
        stations = (
            {
                s.station_id: s
                for s in await session.exec(
                    select(FirmwareStation).where(
                        col(FirmwareStation.station_id).in_([r.station_id for r in rows])
                    )
                )
            }
            if len(rows) <= 5000
            else {s.station_id: s for s in await session.exec(select(FirmwareStation))}
        )
        zones = {site.site_id: site.timezone for site in await session.exec(select(Site))}
        campaign_zone = None
        if rows:
            campaign = await session.get(Campaign, rows[0].campaign_id)
            window = (campaign.plan or {}).get("window") if campaign else None
            campaign_zone = window.get("timezone") if window else None
        result = []
        for row in rows:
            station = stations.get(row.station_id)
            zone_name = campaign_zone or zones.get(
                (station.site_id if station else None) or "", "UTC"
            )
            result.append(
                StationProgress(
                    station_id=row.station_id,
                    wave=row.wave,
                    position=row.position,
                    state=row.state,
                    online=station.online if station else False,
                    timezone=zone_name,
                    last_activity_at=row.last_activity_at,
                    retry_at=row.retry_at,
                    triggered=row.triggered,
                )
            )
        return result

    async def _apply(
        self,
        session: AsyncSession,
        campaign: Campaign,
        rows: list[CampaignStation],
        decision: Decision,
        now: datetime,
    ) -> tuple[list[Dispatch], list[str]]:
        by_id = {row.station_id: row for row in rows}
        rollout = RolloutPlan.model_validate(campaign.plan)
        for station_id in decision.silent:
            row = by_id[station_id]
            progress.attempt_failed(
                session,
                row,
                rollout,
                f"no word from the station for {rollout.silence_timeout_s:g} s",
                final=False,
            )
        for station_id in decision.expire:
            progress.move(session, by_id[station_id], StationState.SKIPPED, reason="campaign ended")
        for station_id in decision.trigger:
            by_id[station_id].triggered = True
            session.add(by_id[station_id])
        if decision.complete and campaign.state is not CampaignState.COMPLETED:
            await progress.set_campaign_state(session, campaign, CampaignState.COMPLETED)
            await release_stations(session, campaign.campaign_id)
            return [], []
        if decision.pause is not None:
            await progress.set_campaign_state(
                session, campaign, CampaignState.PAUSED, decision.pause
            )
            return [], decision.trigger
        image = await session.get(FirmwareImage, campaign.image_id)
        if image is None:
            return [], decision.trigger
        dispatches = [
            await self._claim(session, campaign, by_id[station_id], image, rollout, now)
            for station_id in decision.dispatch
        ]
        holding = sum(1 for row in rows if row.state in DOWNLOAD_SLOT)
        self.peak_downloads = max(self.peak_downloads, holding)
        downloads_in_progress.set(holding)
        return dispatches, decision.trigger

    async def _claim(
        self,
        session: AsyncSession,
        campaign: Campaign,
        row: CampaignStation,
        image: FirmwareImage,
        rollout: RolloutPlan,
        now: datetime,
    ) -> Dispatch:
        request = StationRequest(
            station_id=row.station_id, kind="update", campaign_id=campaign.campaign_id
        )
        session.add(request)
        await session.flush()
        assert request.request_id is not None  # noqa: S101 - assigned by the flush
        location = new_download_link(
            session,
            image,
            station_id=row.station_id,
            request_id=request.request_id,
            base_url=self._settings.station_base_url(),
            ttl_s=self._settings.download_url_ttl_s,
            now=now,
        )
        row.attempt += 1
        row.request_id, row.last_activity_at = request.request_id, now
        # When it was decided, not when the round began: the consumer may have finished the
        # wave before in between (the snapshot saw that), and the two times are compared.
        row.dispatched_at = max(now, utc_now())
        row.retry_at, row.triggered, row.ocpp_status = None, False, None
        progress.move(session, row, StationState.DISPATCHING)
        update = FirmwareUpdate(
            location=location,
            request_id=request.request_id,
            retrieve_at=now,
            retries=rollout.download_retries,
            retry_interval_s=rollout.download_retry_interval_s,
            signature=image.signature,
            signing_certificate=image.signing_certificate,
        )
        return Dispatch(campaign.campaign_id, row.station_id, request.request_id, update)

    async def _send(self, dispatch: Dispatch) -> None:
        status: str | None = None
        failure: str | None = None
        try:
            answer = await self._commands.call(
                dispatch.station_id, lambda v: update_firmware(v, dispatch.update)
            )
            if _lacks_security_extension(answer):
                answer = await self._commands.call(
                    dispatch.station_id,
                    lambda v: update_firmware(v, dispatch.update, plain_16=True),
                )
            status = answer.status
            failure = None if answer.answered else answer.failure
        except StationOffline:
            await self._back_to_pending(dispatch)
            updates_sent.labels("offline").inc()
            return
        except InvalidOwnPayload as exc:
            logger.error("%s", exc)  # noqa: TRY400 - our bug, not an exception to trace
            failure = f"not sent: {exc}"
        updates_sent.labels((failure and "failed") or status or "Accepted").inc()
        async with transaction(self._factory) as session:
            row = await self._dispatched_row(session, dispatch)
            if row is not None:
                plan_ = await progress.plan_of(session, dispatch.campaign_id)
                progress.record_answer(session, row, plan_, status, failure)
        self.wake() if failure else None

    async def _back_to_pending(self, dispatch: Dispatch) -> None:
        """Offline after all: not an attempt; it is picked up when it is back."""
        async with transaction(self._factory) as session:
            row = await self._dispatched_row(session, dispatch)
            if row is not None:
                row.attempt -= 1
                progress.move(session, row, StationState.PENDING, reason="offline")

    async def _dispatched_row(
        self, session: AsyncSession, dispatch: Dispatch
    ) -> CampaignStation | None:
        return await progress.dispatched_row(
            session, dispatch.campaign_id, dispatch.station_id, dispatch.request_id
        )

    async def _trigger(self, station_id: str) -> None:
        try:
            await self._commands.call(station_id, lambda v: trigger_firmware_status(v))
        except (StationOffline, InvalidOwnPayload) as exc:
            logger.info("no status trigger for %s: %r", station_id, exc)


async def _claim_rows(
    session: AsyncSession, campaign_id: str
) -> tuple[list[CampaignStation], set[str]]:
    """Every station row of the campaign, and the ids of those another transaction holds:
    the others are locked for this round's transaction (``FOR UPDATE SKIP LOCKED``)."""
    of_campaign = CampaignStation.campaign_id == campaign_id
    claimed = list(
        await session.exec(
            select(CampaignStation).where(of_campaign).with_for_update(skip_locked=True)
        )
    )
    total = (await session.exec(select(func.count()).where(of_campaign))).one()
    if len(claimed) == total:
        return claimed, set()
    # Some are held: read them as last committed (the claimed ones are the same objects).
    rows = list(await session.exec(select(CampaignStation).where(of_campaign)))
    ours = {row.station_id for row in claimed}
    return rows, {row.station_id for row in rows if row.station_id not in ours}


def _leaving(decision: Decision, busy: set[str], now: datetime) -> Decision:
    """``decision`` without what it would do to the ``busy`` stations (nor the campaign's
    end, which releases every row): the next round, at once, decides on them."""
    return Decision(
        dispatch=[station_id for station_id in decision.dispatch if station_id not in busy],
        trigger=[station_id for station_id in decision.trigger if station_id not in busy],
        silent=[station_id for station_id in decision.silent if station_id not in busy],
        expire=[station_id for station_id in decision.expire if station_id not in busy],
        pause=decision.pause,
        complete=False,
        wake_at=now,
    )


async def _first_of(wake: asyncio.Event, stopping: asyncio.Event, timeout_s: float) -> None:
    """Wait until either event is set, or ``timeout_s``."""
    waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _lacks_security_extension(answer: Answer) -> bool:
    """A 1.6 station without the security whitepaper refuses SignedUpdateFirmware."""
    return (
        answer.action == "SignedUpdateFirmware"
        and not answer.answered
        and answer.result.error_code in NOT_IMPLEMENTED
    )
