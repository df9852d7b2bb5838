"""Security event types: their names in each version and how severe they are.

The standardized types are listed in OCPP 2.0.1 Part 2 Appendix 1 (2.1 adds
DiscardedRenewedClientCertificate, also in the 2.0.1 errata as A02.FR.29) and in
the 1.6 security whitepaper (edition 3, section "Security events"). Three events
are named differently: 1.6 says CentralSystem and ChargePoint where 2.x says
Csms and ChargingStation. Each version also marks some types critical: a station
pushes those to the CSMS at once. ``severity`` is ours: ``critical`` for what the
spec marks critical in either version and for the CSMS's own refusals of a
station's credentials, ``warning`` for the other known types, ``info`` for types
a vendor made up.
"""

from dataclasses import dataclass

from csms_core.events.security import Severity

__all__ = [
    "CSMS_CRITICAL",
    "KINDS",
    "Classification",
    "EventKind",
    "Severity",
    "classify",
    "names_of",
    "severity_of",
]


@dataclass(frozen=True)
class EventKind:
    """One security event type: its 1.6 and 2.x names and whether each version calls it
    critical (None: the type does not exist in that version)."""

    name_2x: str
    name_16: str | None
    critical_16: bool | None
    critical_2x: bool
    description: str

    @property
    def severity(self) -> Severity:
        return Severity.CRITICAL if self.critical_2x or self.critical_16 else Severity.WARNING


def _kind(
    name_2x: str,
    description: str,
    *,
    critical_2x: bool,
    critical_16: bool | None,
    name_16: str | None = None,
) -> EventKind:
    name = name_16 if name_16 is not None else (name_2x if critical_16 is not None else None)
    return EventKind(name_2x, name, critical_16, critical_2x, description)


KINDS: tuple[EventKind, ...] = (
    _kind("FirmwareUpdated", "the firmware was updated", critical_2x=True, critical_16=True),
    _kind(
        "FailedToAuthenticateAtCsms",
        "the station's credentials were rejected by the CSMS",
        name_16="FailedToAuthenticateAtCentralSystem",
        critical_2x=False,
        critical_16=False,
    ),
    _kind(
        "CsmsFailedToAuthenticate",
        "the CSMS's credentials were rejected by the station",
        name_16="CentralSystemFailedToAuthenticate",
        critical_2x=False,
        critical_16=False,
    ),
    _kind("SettingSystemTime", "the station's clock was set", critical_2x=True, critical_16=True),
    _kind("StartupOfTheDevice", "the station booted", critical_2x=True, critical_16=True),
    _kind("ResetOrReboot", "the station was reset or rebooted", critical_2x=True, critical_16=True),
    _kind(
        "SecurityLogWasCleared", "the security log was cleared", critical_2x=True, critical_16=True
    ),
    _kind(
        "ReconfigurationOfSecurityParameters",
        "security parameters (keys, security profile) were changed",
        critical_2x=False,
        critical_16=False,
    ),
    _kind("MemoryExhaustion", "flash or RAM is getting full", critical_2x=True, critical_16=True),
    _kind(
        "InvalidMessages",
        "the station received invalid OCPP messages",
        critical_2x=False,
        critical_16=False,
    ),
    _kind(
        "AttemptedReplayAttacks",
        "the station received a replayed message",
        critical_2x=False,
        critical_16=False,
    ),
    _kind(
        "TamperDetectionActivated",
        "the physical tamper detection was triggered",
        critical_2x=True,
        critical_16=True,
    ),
    _kind(
        "InvalidFirmwareSignature",
        "a firmware signature is not valid",
        critical_2x=True,
        critical_16=False,
    ),
    _kind(
        "InvalidFirmwareSigningCertificate",
        "the firmware signing certificate is not valid",
        critical_2x=True,
        critical_16=False,
    ),
    _kind(
        "InvalidCsmsCertificate",
        "the CSMS's TLS certificate was not valid or could not be verified",
        name_16="InvalidCentralSystemCertificate",
        critical_2x=True,
        critical_16=False,
    ),
    _kind(
        "InvalidChargingStationCertificate",
        "the certificate sent in CertificateSigned is not valid",
        name_16="InvalidChargePointCertificate",
        critical_2x=True,
        critical_16=False,
    ),
    _kind(
        "InvalidTLSVersion",
        "the CSMS used a TLS version below 1.2",
        critical_2x=True,
        critical_16=False,
    ),
    _kind(
        "InvalidTLSCipherSuite",
        "the CSMS allowed only TLS cipher suites the security specification forbids",
        critical_2x=True,
        critical_16=False,
    ),
    _kind(
        "MaintenanceLoginAccepted",
        "a login to the local maintenance interface succeeded",
        critical_2x=True,
        critical_16=None,
    ),
    _kind(
        "MaintenanceLoginFailed",
        "a login to the local maintenance interface failed",
        critical_2x=True,
        critical_16=None,
    ),
    _kind(
        "DiscardedRenewedClientCertificate",
        "the station discarded its renewed client certificate: it could not connect with it",
        critical_2x=True,
        critical_16=None,
    ),
)

# What the CSMS itself records as security events (source "csms"), besides the
# standardized types it can also use (FailedToAuthenticateAtCsms for a refused password
# or a certificate for another station).
CSMS_TYPES: dict[str, str] = {
    "CsrRejected": "a station's certificate signing request failed its checks",
    "CertificateRejectedByStation": "a station refused the certificate sent to it",
    "SecurityProfileTooLow": "a station connected with less than its security profile",
    "UnknownStationRefused": "a connection for a station id the CSMS does not know was refused",
    "MessageFlooding": "a station was cut off for sending messages over the rate limit",
}

_BY_NAME: dict[str, EventKind] = {
    **{kind.name_2x.lower(): kind for kind in KINDS},
    **{kind.name_16.lower(): kind for kind in KINDS if kind.name_16 is not None},
}


@dataclass(frozen=True)
class Classification:
    """A received type, what it is known as in both versions, and how severe it is."""

    type: str
    name_2x: str | None
    name_16: str | None
    severity: Severity
    critical: bool  # the spec's flag in the version it was received in
    known: bool


def classify(event_type: str, version: str) -> Classification:
    """Classify ``event_type`` as received from a station speaking ``version`` (1.6, 2.x).

    Names are matched regardless of case (some stations send ``INVALIDTLSVERSION``) and
    either version's name is recognised in both.
    """
    kind = _BY_NAME.get(event_type.lower())
    if kind is None and event_type in CSMS_TYPES:
        return Classification(event_type, event_type, event_type, Severity.WARNING, False, True)
    if kind is None:
        return Classification(event_type, None, None, Severity.INFO, False, known=False)
    critical = kind.critical_16 if version == "1.6" else kind.critical_2x
    return Classification(
        event_type, kind.name_2x, kind.name_16, kind.severity, bool(critical), known=True
    )


def names_of(event_type: str) -> set[str]:
    """Every name ``event_type`` goes by (for filtering: either version's name matches)."""
    kind = _BY_NAME.get(event_type.lower())
    if kind is None:
        return {event_type}
    return {name for name in (kind.name_2x, kind.name_16) if name is not None}


# The CSMS's own refusals of a station's credentials are critical (a station's own report
# of the same type is not): someone may be trying another station's password or
# certificate, or to connect with less security than the station has.
CSMS_CRITICAL = frozenset({"FailedToAuthenticateAtCsms", "SecurityProfileTooLow"})


def severity_of(classification: Classification, *, by_csms: bool) -> Severity:
    """The severity of an event of ``classification`` the CSMS (or a station) recorded."""
    if by_csms and classification.type in CSMS_CRITICAL:
        return Severity.CRITICAL
    return classification.severity
