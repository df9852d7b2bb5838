"""The records of ``csms.security-events`` (documented in docs/asyncapi.yaml).

Version-neutral: a security event carries both versions' names of its type, a
certificate event the certificate's serial and use, so an integrator never needs
to know which OCPP version the station speaks.
"""

from datetime import datetime

from pydantic import BaseModel, Field

from csms_security.events.classification import Severity
from csms_security.events.models import EventSource

SECURITY_EVENT_RECORDED = "security.event.recorded"
CERTIFICATE_ISSUED = "certificate.issued"
CERTIFICATE_INSTALLED = "certificate.installed"  # the station accepted it (CertificateSigned)
CERTIFICATE_REJECTED = "certificate.rejected"
PROFILE_UPGRADED = "security-profile.upgraded"


class SecurityEventRecorded(BaseModel):
    type: str = Field(
        description="As the station (or the CSMS) named it", examples=["InvalidTLSVersion"]
    )
    name_2x: str | None = Field(description="The OCPP 2.x name of the type; null if unknown")
    name_16: str | None = Field(description="The 1.6 whitepaper name; null if 2.x only")
    severity: Severity
    critical: bool = Field(description="Critical per the spec of the version it came in")
    source: EventSource
    timestamp: datetime
    tech_info: str | None = None


class CertificateEvent(BaseModel):
    serial: str = Field(description="Hex serial number")
    certificate_use: str = Field(examples=["ChargingStationCertificate"])
    not_after: datetime
    reason: str | None = None


class ProfileUpgraded(BaseModel):
    upgrade_id: str
    from_profile: int
    to_profile: int
