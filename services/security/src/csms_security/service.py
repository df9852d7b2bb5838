"""The security service: the CA, migrations, then the consumer and the background work.

The caller opens and closes the bus, router, command client and engine; this
service owns the CA (loaded or created in ``start``), the HTTP clients of the
outside parties (EST, OCSP responders, the contract-certificate provider), and
its background work: the issuer, renewals and profile upgrades.
"""

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import timedelta
from types import TracebackType
from typing import Self

from cryptography import x509
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from csms_api.access import migrate_access
from csms_core.bus import Bus
from csms_core.calls import Announcement
from csms_core.db import session_factory, transaction
from csms_core.identity import migrate_identity
from csms_core.router import CommandClient, Router
from csms_core.service import batch_limits, consume_and_run
from csms_security.authority.ca import (
    CertificateAuthority,
    CertificateUse,
    load_authority,
    load_or_create_authority,
)
from csms_security.authority.signers import CertificateSigner, EstSigner, LocalSigner
from csms_security.calls import StationCalls
from csms_security.certificates.keeper import InventoryKeeper
from csms_security.certificates.renewal import Renewals
from csms_security.certificates.signing import Issuer, key_id
from csms_security.consumer import TOPICS, SecurityConsumer
from csms_security.context import Pki, calls
from csms_security.db import migrate_security, utc_now
from csms_security.events.models import SecurityEvent
from csms_security.inbox import ProcessedEvent
from csms_security.pnc.contracts import ContractProvider, HttpContractProvider, NoContractProvider
from csms_security.pnc.revocation import RevocationClient
from csms_security.pnc.trust import TrustStore
from csms_security.profiles.service import ProfileUpgrades
from csms_security.settings import SecuritySettings
from csms_security.waiting import woken

logger = logging.getLogger(__name__)

# A replay comes from offsets not yet committed, so minutes old at most; a week is ample.
PROCESSED_EVENT_RETENTION = timedelta(days=7)
PRUNE_EVERY_S = 3600.0


def load_ca(settings: SecuritySettings) -> CertificateAuthority:
    """The operator's CA from files, or the one in ``ca_dir`` (created on first start)."""
    if settings.ca_cert_file is not None and settings.ca_key_file is not None:
        password = settings.ca_key_password
        return load_authority(
            settings.ca_cert_file,
            settings.ca_key_file,
            password.get_secret_value().encode() if password else None,
        )
    return load_or_create_authority(
        settings.ca_dir, settings.organization, timedelta(days=settings.ca_validity_days)
    )


class SecurityService:
    """Everything the security service needs; use it as an async context manager."""

    def __init__(
        self,
        settings: SecuritySettings,
        *,
        bus: Bus,
        router: Router,
        commands: CommandClient,
        engine: AsyncEngine,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.router = router
        self.commands = commands
        self.engine = engine
        self.factory = session_factory(engine)
        self.calls = StationCalls(router, commands, settings.command_timeout_s)
        self.ready = asyncio.Event()
        self._stack = AsyncExitStack()
        # Set in __aenter__ (the CA is read from disk there, off the event loop).
        self.authority: CertificateAuthority | None = None
        self.signers: dict[CertificateUse, CertificateSigner] = {}
        self.pki: Pki
        self.issuer: Issuer
        self.renewals: Renewals
        self.upgrades: ProfileUpgrades
        self.inventory: InventoryKeeper

    async def __aenter__(self) -> Self:
        settings = self.settings
        if settings.est_url is None:
            self.authority = await asyncio.to_thread(load_ca, settings)
            self._check_organization(self.authority.certificate)
            logger.info("station CA: %s", self.authority.certificate.subject.rfc4514_string())
        station_signer = self._signer(settings.est_url)
        v2g_signer = self._signer(settings.v2g_est_url) if settings.v2g_est_url else station_signer
        self.signers = {
            CertificateUse.CHARGING_STATION: station_signer,
            CertificateUse.COMBINED: station_signer,
            CertificateUse.V2G: v2g_signer,
            CertificateUse.V2G20: v2g_signer,
        }
        trust = TrustStore.from_file(settings.pnc_trust_file)
        if trust.empty:
            logger.warning("no CSMS_SECURITY_PNC_TRUST_FILE: OCSP answers are used unverified")
        revocation = RevocationClient(
            trust, settings.pki_timeout_s, allow_private=settings.pki_allow_private_addresses
        )
        self._stack.push_async_callback(revocation.aclose)
        self.pki = Pki(revocation, self._contract_provider(), trust)
        self.issuer = Issuer(self.factory, self.bus, self.calls, self.signers)
        current = key_id(self.authority.certificate) if self.authority is not None else None
        self.renewals = Renewals(settings, self.factory, self.calls, current)
        self.upgrades = ProfileUpgrades(settings, self.factory, self.calls)
        self.inventory = InventoryKeeper(settings, self.factory, self.calls)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    def _check_organization(self, certificate: x509.Certificate) -> None:
        # The O of station certificates is the CA's O (what REST serves as the anchor).
        organizations = [
            str(a.value)
            for a in certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        ]
        if organizations != [self.settings.organization]:
            raise ValueError(
                f"the CA's organizationName is {organizations or 'missing'}; set "
                f"CSMS_SECURITY_ORGANIZATION to it (now {self.settings.organization!r})"
            )

    def _signer(self, est_url: str | None) -> CertificateSigner:
        settings = self.settings
        if est_url is None:
            assert self.authority is not None  # noqa: S101 - loaded when no EST is set
            return LocalSigner(self.authority, timedelta(days=settings.certificate_validity_days))
        auth = None
        if settings.est_username is not None and settings.est_password is not None:
            auth = (settings.est_username, settings.est_password.get_secret_value())
        signer = EstSigner(
            est_url, timeout_s=settings.est_timeout_s, auth=auth, ca_file=settings.est_ca_file
        )
        self._stack.push_async_callback(signer.aclose)
        return signer

    def _contract_provider(self) -> ContractProvider:
        settings = self.settings
        if settings.contract_provider_url is None:
            return NoContractProvider()
        token = settings.contract_provider_token
        provider = HttpContractProvider(
            settings.contract_provider_url,
            timeout_s=settings.pki_timeout_s,
            token=token.get_secret_value() if token else None,
        )
        self._stack.push_async_callback(provider.aclose)
        return provider

    async def migrate(self) -> None:
        # The identity schema is read (profiles, the station directory); API keys are read.
        await migrate_identity(self.engine)
        await migrate_access(self.engine)
        await migrate_security(self.engine)

    async def run(self, *, ready: asyncio.Event | None = None, stopping: asyncio.Event) -> None:
        """Migrate, then consume and work in the background until ``stopping``."""
        await self.migrate()
        consumer = SecurityConsumer(
            self.settings, self.bus, self.commands, self.engine, self.pki, self.issuer,
            [self.renewals.station_booted, self.inventory.station_booted],
        )  # fmt: skip
        answers = Announcement(self.router, calls.declaration())
        await answers.announce()  # before ready: gateways route our CALLs to us from now
        await consume_and_run(
            "security",
            bus=self.bus,
            topic_names=TOPICS,
            group=self.settings.consumer_group,
            handler=consumer,
            engine=self.engine,
            concurrency=self.settings.consumer_concurrency,
            limits=batch_limits(self.settings, self.engine),
            stopping=stopping,
            background={
                "security issuer": self.issuer.run(stopping),
                "security renewals": self.renewals.run(stopping),
                "security profile upgrades": self.upgrades.run(stopping),
                "security certificate lists": self.inventory.run(stopping),
                "security pruning": self._prune(stopping),
                "security answers": answers.run(stopping),
            },
            ready=[self.ready, *([ready] if ready is not None else [])],
        )

    async def _prune(self, stopping: asyncio.Event) -> None:
        """Forget processed event ids after a week, security events after their retention."""
        while not stopping.is_set():
            now = utc_now()
            events_before = now - timedelta(days=self.settings.event_retention_days)
            try:
                async with transaction(self.factory) as session:
                    await session.exec(
                        delete(ProcessedEvent).where(
                            col(ProcessedEvent.completed),
                            col(ProcessedEvent.processed_at) < now - PROCESSED_EVENT_RETENTION,
                        )
                    )
                    await session.exec(
                        delete(SecurityEvent).where(col(SecurityEvent.received_at) < events_before)
                    )
            except Exception:
                logger.exception("pruning failed")
            await woken(asyncio.Event(), stopping, PRUNE_EVERY_S)
