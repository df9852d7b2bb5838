"""Raising a station's security profile (OCPP 2.0.1 A05 / TC_A_19; 1.6 whitepaper / TC_083).

2.x: GetVariables OCPPCommCtrlr.NetworkConfigurationPriority (which slots are in
use) → SetNetworkProfile in a free slot with the higher ``securityProfile`` →
SetVariables NetworkConfigurationPriority "<new>,<old...>" → Reset OnIdle.
1.6: ChangeConfiguration SecurityProfile → Reset Hard.
Then the station reconnects with the new profile; when the gateway reports that
connection, the station's recorded profile (the identity store) is raised in the
same transaction, so from then on the gateway refuses the old profile at the
handshake. Until then the old profile keeps working: a station that cannot
connect with the new one falls back to its old slot (A05.FR.07), and the upgrade
fails at its deadline instead of locking the station out.
"""

import asyncio
import logging
from datetime import timedelta
from typing import Any, Literal
from uuid import uuid4

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.identity import StationIdentity
from csms_core.router import CommandResult, StationOffline
from csms_ocpp import OcppVersion
from csms_security.authority.ca import CertificateUse
from csms_security.calls import InvalidCall, StationCalls, accepted, describe
from csms_security.certificates.models import CertificateStatus, StationCertificate
from csms_security.db import utc_now
from csms_security.profiles.models import ProfileUpgrade, StationLink, UpgradeState
from csms_security.settings import SecuritySettings
from csms_security.waiting import next_item

logger = logging.getLogger(__name__)

PRIORITY = {
    "component": {"name": "OCPPCommCtrlr"},
    "variable": {"name": "NetworkConfigurationPriority"},
}
SWEEP_S = 30.0
OCPP_VERSION_NAME = {OcppVersion.V201: "OCPP20", OcppVersion.V21: "OCPP21"}


class UpgradeRequest(BaseModel):
    """Raise a station to security profile 2 (TLS + password) or 3 (TLS + certificate)."""

    target_profile: Literal[2, 3] = Field(examples=[3])
    csms_url: str | None = Field(
        default=None,
        max_length=512,
        pattern="^wss://",
        description="2.x: ocppCsmsUrl of the new network profile, without the station id "
        "(default CSMS_SECURITY_CSMS_URL)",
        examples=["wss://csms.example.com/ocpp/"],
    )
    configuration_slot: int | None = Field(
        default=None, ge=0, le=99, description="2.x: the slot to use (default: the first free)"
    )
    ocpp_interface: str = Field(default="Wired0", description="2.x: ocppInterface", max_length=16)
    message_timeout_s: int = Field(default=30, ge=1, le=3600, description="2.x: messageTimeout")
    require_certificate: bool = Field(
        default=True,
        description="profile 3: refuse unless the station holds a certificate the CSMS issued",
    )


class UpgradeRefused(Exception):
    """The upgrade cannot start: ``status`` and ``kind`` for the REST problem."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail


class ProfileUpgrades:
    def __init__(
        self,
        settings: SecuritySettings,
        factory: async_sessionmaker[AsyncSession],
        calls: StationCalls,
    ) -> None:
        self._settings = settings
        self._factory = factory
        self._calls = calls
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def start(self, station_id: str, request: UpgradeRequest) -> ProfileUpgrade:
        """Check the preconditions, store the upgrade and queue it; its steps follow."""
        async with self._factory() as session, session.begin():
            link = await session.get(StationLink, station_id)
            if link is None:
                raise UpgradeRefused(
                    404, "unknown-station", f"no station {station_id} connected yet"
                )
            try:
                version = await self._calls.version(station_id)
            except StationOffline:
                raise UpgradeRefused(
                    409, "station-offline", f"no gateway holds a connection to {station_id}"
                ) from None
            await self._check(session, station_id, link, version, request)
            upgrade = ProfileUpgrade(
                id=uuid4().hex,
                station_id=station_id,
                ocpp_version=version.number,
                from_profile=link.security_profile,
                target_profile=request.target_profile,
                state=UpgradeState.PENDING,
                configuration_slot=request.configuration_slot,
                csms_url=request.csms_url or self._settings.csms_url,
                deadline=utc_now() + timedelta(seconds=self._settings.upgrade_timeout_s),
                steps=[{"request": request.model_dump(exclude={"csms_url"})}],
            )
            session.add(upgrade)
        self._queue.put_nowait(upgrade.id)
        return upgrade

    async def _check(
        self,
        session: AsyncSession,
        station_id: str,
        link: StationLink,
        version: OcppVersion,
        request: UpgradeRequest,
    ) -> None:
        target = request.target_profile
        if target <= link.security_profile:
            raise UpgradeRefused(
                409, "not-an-upgrade",
                f"{station_id} connects with profile {link.security_profile} already",
            )  # fmt: skip
        running = await active_upgrade(session, station_id)
        if running is not None:
            raise UpgradeRefused(409, "upgrade-running", f"upgrade {running.id} is still running")
        identity = await session.get(StationIdentity, station_id)
        if target == 2 and (identity is None or identity.password_hash is None):
            raise UpgradeRefused(
                409, "no-password", "profile 2 needs a Basic auth password set for the station"
            )
        if (
            target == 3
            and request.require_certificate
            and not await _holds_certificate(session, station_id)
        ):
            raise UpgradeRefused(
                409, "no-certificate",
                "profile 3 needs a station certificate: have the station sign one first "
                "(POST .../certificates/renew)",
            )  # fmt: skip
        if version.is_2x and not (request.csms_url or self._settings.csms_url):
            raise UpgradeRefused(
                422, "no-csms-url", "set csms_url (or CSMS_SECURITY_CSMS_URL) for a 2.x station"
            )

    # -- driving upgrades --------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Drive queued upgrades one after another; fail those past their deadline."""
        await self._requeue_interrupted()
        while not stopping.is_set():
            upgrade_id = await next_item(self._queue, stopping, SWEEP_S)
            try:
                if upgrade_id is not None:
                    await self.drive(upgrade_id)
                await self.fail_overdue()
            except Exception:
                logger.exception("profile upgrade round failed")

    async def _requeue_interrupted(self) -> None:
        """Upgrades a crashed process left before their reset are failed: a half-configured
        station keeps its old slot first, so it stays reachable."""
        async with self._factory() as session, session.begin():
            rows = await session.exec(
                select(ProfileUpgrade).where(
                    col(ProfileUpgrade.state).in_([UpgradeState.PENDING, UpgradeState.CONFIGURING])
                )
            )
            for upgrade in rows.all():
                if upgrade.updated_at < utc_now() - timedelta(
                    seconds=self._settings.command_timeout_s * 6
                ):
                    _fail(upgrade, "interrupted before the reset (the CSMS restarted)")
                    session.add(upgrade)

    async def drive(self, upgrade_id: str) -> ProfileUpgrade | None:
        async with self._factory() as session:
            upgrade = await session.get(ProfileUpgrade, upgrade_id)
        if upgrade is None or upgrade.state is not UpgradeState.PENDING:
            return upgrade
        await self._save(upgrade, UpgradeState.CONFIGURING)
        version = OcppVersion.from_number(upgrade.ocpp_version)
        try:
            steps = self._steps_2x if version.is_2x else self._steps_16
            await steps(upgrade)
        except (StationOffline, InvalidCall, StepFailed) as exc:
            _fail(upgrade, str(exc) or "station offline")
            await self._save(upgrade, UpgradeState.FAILED)
            logger.warning("security profile upgrade of %s failed: %s", upgrade.station_id, exc)
            return upgrade
        await self._save(upgrade, UpgradeState.AWAITING_RECONNECT)
        return upgrade

    async def _steps_16(self, upgrade: ProfileUpgrade) -> None:
        key = {"key": "SecurityProfile", "value": str(upgrade.target_profile)}
        await self._step(upgrade, "ChangeConfiguration", key, "Accepted", "RebootRequired")
        await self._save(upgrade, UpgradeState.RESETTING)
        await self._step(upgrade, "Reset", {"type": "Hard"}, "Accepted")

    async def _steps_2x(self, upgrade: ProfileUpgrade) -> None:
        version = OcppVersion.from_number(upgrade.ocpp_version)
        in_use = await self._slots_in_use(upgrade)
        slot = upgrade.configuration_slot
        if slot is None:
            slot = next(n for n in range(1, 100) if n not in in_use)
        upgrade.configuration_slot = slot
        connection: dict[str, Any] = {
            "ocppVersion": OCPP_VERSION_NAME[version],
            "ocppTransport": "JSON",
            "ocppCsmsUrl": upgrade.csms_url,
            "messageTimeout": upgrade.steps[0]["request"]["message_timeout_s"],
            "securityProfile": upgrade.target_profile,
            "ocppInterface": upgrade.steps[0]["request"]["ocpp_interface"],
        }
        await self._step(
            upgrade, "SetNetworkProfile",
            {"configurationSlot": slot, "connectionData": connection}, "Accepted",
        )  # fmt: skip
        priority = ",".join(str(n) for n in [slot, *(n for n in in_use if n != slot)])
        result = await self._step(
            upgrade, "SetVariables",
            {"setVariableData": [{**PRIORITY, "attributeValue": priority}]}, None,
        )  # fmt: skip
        variable = ((result.payload or {}).get("setVariableResult") or [{}])[0]
        if variable.get("attributeStatus") not in ("Accepted", "RebootRequired"):
            raise StepFailed(
                f"SetVariables NetworkConfigurationPriority {variable.get('attributeStatus')}"
            )
        await self._save(upgrade, UpgradeState.RESETTING)
        await self._step(upgrade, "Reset", {"type": "OnIdle"}, "Accepted", "Scheduled")

    async def _slots_in_use(self, upgrade: ProfileUpgrade) -> list[int]:
        result = await self._step(upgrade, "GetVariables", {"getVariableData": [PRIORITY]}, None)
        variable = ((result.payload or {}).get("getVariableResult") or [{}])[0]
        value = (
            variable.get("attributeValue")
            if variable.get("attributeStatus") == "Accepted"
            else None
        )
        slots = []
        for part in (value or "").split(","):
            if part.strip().isdigit():
                slots.append(int(part.strip()))
        return slots

    async def _step(
        self, upgrade: ProfileUpgrade, action: str, payload: dict[str, Any], *statuses: str | None
    ) -> CommandResult:
        """Send one call; StepFailed unless it is answered with one of ``statuses`` (None: any
        CALLRESULT, the caller looks inside)."""

        def build(version: OcppVersion) -> tuple[str, dict[str, Any]]:
            return action, payload

        result = await self._calls.call(upgrade.station_id, build)
        upgrade.steps = [
            *upgrade.steps,
            {"action": action, "result": describe(result), "at": utc_now().isoformat()},
        ]
        await self._save(upgrade, upgrade.state)
        wanted = [status for status in statuses if status is not None]
        if wanted and not accepted(result, *wanted):
            raise StepFailed(describe(result))
        if not wanted and result.payload is None:
            raise StepFailed(describe(result))
        return result

    async def fail_overdue(self) -> int:
        async with self._factory() as session, session.begin():
            rows = await session.exec(
                select(ProfileUpgrade).where(
                    col(ProfileUpgrade.state).not_in([UpgradeState.COMPLETED, UpgradeState.FAILED]),
                    col(ProfileUpgrade.deadline) < utc_now(),
                )
            )
            overdue = list(rows.all())
            for upgrade in overdue:
                _fail(
                    upgrade,
                    f"the station did not come back with profile {upgrade.target_profile} in time",
                )
                session.add(upgrade)
        return len(overdue)

    async def _save(self, upgrade: ProfileUpgrade, state: UpgradeState) -> None:
        upgrade.state, upgrade.updated_at = state, utc_now()
        async with self._factory() as session, session.begin():
            await session.merge(upgrade)


class StepFailed(Exception):
    pass


def _fail(upgrade: ProfileUpgrade, reason: str) -> None:
    upgrade.state, upgrade.error, upgrade.updated_at = UpgradeState.FAILED, reason[:500], utc_now()


async def active_upgrade(session: AsyncSession, station_id: str) -> ProfileUpgrade | None:
    rows = await session.exec(
        select(ProfileUpgrade).where(
            ProfileUpgrade.station_id == station_id,
            col(ProfileUpgrade.state).not_in([UpgradeState.COMPLETED, UpgradeState.FAILED]),
        )
    )
    return rows.first()


async def _holds_certificate(session: AsyncSession, station_id: str) -> bool:
    rows = await session.exec(
        select(StationCertificate.serial).where(
            StationCertificate.station_id == station_id,
            StationCertificate.status == CertificateStatus.ACTIVE,
            col(StationCertificate.certificate_use).in_(
                [CertificateUse.CHARGING_STATION, CertificateUse.COMBINED]
            ),
            col(StationCertificate.not_after) > utc_now(),
        )
    )
    return rows.first() is not None
