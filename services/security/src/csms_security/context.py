"""What a handler of one consumed event gets, and how handlers declare what they answer."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core import topics
from csms_core.calls import CallHandlers
from csms_core.envelope import Event
from csms_core.events import InboundCall, OcppCall, OcppSend
from csms_ocpp import OcppVersion
from csms_security.pnc.contracts import ContractProvider
from csms_security.pnc.revocation import RevocationClient
from csms_security.pnc.trust import TrustStore
from csms_security.settings import SecuritySettings

SOURCE = "csms/security"
PARTY = "security"
SECURITY_EVENTS = topics.SECURITY_EVENTS


class ConnectionChange(BaseModel):
    """The ``data`` of an ``ocpp.connection.opened`` / ``closed`` event (ocpp.connections)."""

    model_config = ConfigDict(extra="ignore")

    gateway_id: str
    connection_id: str
    subprotocol: str
    security_profile: int | None = None  # opened only


@dataclass(frozen=True)
class Pki:
    """The outside parties Plug & Charge decisions need."""

    revocation: RevocationClient
    contracts: ContractProvider
    trust: TrustStore


@dataclass
class CallContext:
    session: AsyncSession
    settings: SecuritySettings
    pki: Pki
    envelope: OcppCall | OcppSend
    # Domain events to publish once the transaction has committed: (topic, event).
    events: list[tuple[str, Event[Any]]] = field(default_factory=list)
    # Work to do once it has committed (wake the issuer, count a metric).
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def station_id(self) -> str:
        return self.envelope.station_id

    @property
    def version(self) -> OcppVersion:
        return OcppVersion.from_number(self.envelope.ocpp_version or "1.6")

    @property
    def call(self) -> InboundCall:
        return self.envelope.data

    @property
    def payload(self) -> dict[str, Any]:
        return self.call.payload

    @property
    def received_at(self) -> datetime:
        return self.call.received_at


# The station CALLs this service decides or handles, registered where each is defined
# (csms_core.calls: the gateways route by the declaration derived from them).
calls = CallHandlers[CallContext](PARTY)
