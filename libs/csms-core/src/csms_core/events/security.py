"""``csms.security-events``: security events and the certificate lifecycle (security service).

Version-neutral: a security event carries both versions' names of its type, a
certificate event the certificate's serial and use, so an integrator never needs
to know which OCPP version the station speaks.
"""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from csms_core.envelope import Event
from csms_core.events.data import EventData


class Severity(StrEnum):
    """Ours, not OCPP's: ``critical`` for what either version marks critical and for the
    CSMS's refusals of a station's credentials, ``warning`` for the other standardized
    types, ``info`` for types a vendor made up."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class SecurityEventSource(StrEnum):
    STATION = "station"  # a SecurityEventNotification
    CSMS = "csms"  # something the CSMS saw: a refused handshake, a rejected CSR


CertificateUse = Literal[
    "ChargingStationCertificate", "V2GCertificate", "V2G20Certificate", "Combined"
]


class SecurityEventRecordedData(EventData):
    type: str = Field(
        max_length=50,
        description="As the station (or the CSMS) named it",
        examples=["InvalidTLSVersion"],
    )
    name_2x: str | None = Field(description="The OCPP 2.x name of the type; null if unknown")
    name_16: str | None = Field(description="The 1.6 whitepaper name; null if 2.x only")
    severity: Severity
    critical: bool = Field(description="Critical per the spec of the version it came in")
    source: SecurityEventSource
    timestamp: AwareDatetime = Field(description="When it happened (the station's clock)")
    tech_info: str | None = Field(default=None, max_length=255)


class SecurityEventRecorded(Event[SecurityEventRecordedData]):
    """Its id is the reporting event's with ``.recorded``: a replay repeats it."""

    type: Literal["security.event.recorded"] = "security.event.recorded"


class CertificateEventData(EventData):
    serial: str = Field(pattern="^[0-9a-f]+$", description="The serial number, hex")
    certificate_use: CertificateUse
    not_after: AwareDatetime
    reason: str | None = Field(default=None, description="Why the station refused it")


class CertificateIssued(Event[CertificateEventData]):
    """A station certificate was signed (its id: ``{serial}.certificate.issued``)."""

    type: Literal["certificate.issued"] = "certificate.issued"


class CertificateInstalled(Event[CertificateEventData]):
    """The station accepted its certificate (CertificateSigned Accepted)."""

    type: Literal["certificate.installed"] = "certificate.installed"


class CertificateRejected(Event[CertificateEventData]):
    """The station refused its certificate (CertificateSigned Rejected)."""

    type: Literal["certificate.rejected"] = "certificate.rejected"


class SecurityProfileUpgradedData(EventData):
    upgrade_id: str
    from_profile: int = Field(ge=0, le=3)
    to_profile: int = Field(ge=2, le=3)


class SecurityProfileUpgraded(Event[SecurityProfileUpgradedData]):
    """A station came back with the higher profile an upgrade asked for."""

    type: Literal["security-profile.upgraded"] = "security-profile.upgraded"
