"""Security event types: both versions' names, the spec's critical flags, our severity."""

from datetime import UTC, datetime

import pytest

from csms_security.events.classification import KINDS, Severity, classify, names_of
from csms_security.events.models import EventSource
from csms_security.events.service import security_event

RENAMED = [
    ("InvalidCsmsCertificate", "InvalidCentralSystemCertificate"),
    ("InvalidChargingStationCertificate", "InvalidChargePointCertificate"),
    ("FailedToAuthenticateAtCsms", "FailedToAuthenticateAtCentralSystem"),
    ("CsmsFailedToAuthenticate", "CentralSystemFailedToAuthenticate"),
]


@pytest.mark.parametrize(("name_2x", "name_16"), RENAMED)
def test_tc_077_tc_078_either_versions_name_is_the_same_event(name_2x: str, name_16: str) -> None:
    from_16 = classify(name_16, "1.6")
    from_2x = classify(name_2x, "2.0.1")
    assert (from_16.name_2x, from_16.name_16) == (name_2x, name_16)
    assert (from_2x.name_2x, from_2x.name_16) == (name_2x, name_16)
    assert names_of(name_16) == names_of(name_2x) == {name_2x, name_16}


def test_the_spec_marks_critical_differently_per_version() -> None:
    # 1.6 whitepaper: not critical; 2.0.1 Appendix 1: critical.
    assert not classify("InvalidCentralSystemCertificate", "1.6").critical
    assert classify("InvalidCsmsCertificate", "2.0.1").critical
    assert classify("InvalidCsmsCertificate", "2.0.1").severity is Severity.CRITICAL
    # Critical in both.
    assert classify("TamperDetectionActivated", "1.6").critical
    assert classify("TamperDetectionActivated", "2.1").critical
    # Critical in neither.
    assert not classify("InvalidMessages", "2.0.1").critical
    assert classify("InvalidMessages", "2.0.1").severity is Severity.WARNING


def test_every_2x_type_of_the_ocpp_package_is_known() -> None:
    from ocpp.v201.enums import SecurityEventType

    known = {kind.name_2x for kind in KINDS}
    assert {member.value for member in SecurityEventType} <= known


def test_a_vendor_type_is_kept_as_info() -> None:
    vendor = classify("AcmeDoorOpened", "2.0.1")
    assert not vendor.known and vendor.severity is Severity.INFO
    assert vendor.name_2x is None and vendor.type == "AcmeDoorOpened"
    assert names_of("AcmeDoorOpened") == {"AcmeDoorOpened"}


def test_names_match_regardless_of_case() -> None:
    assert classify("INVALIDTLSVERSION", "2.0.1").name_2x == "InvalidTLSVersion"


def test_types_new_in_2x_have_no_16_name() -> None:
    assert classify("MaintenanceLoginFailed", "2.0.1").name_16 is None
    assert classify("DiscardedRenewedClientCertificate", "2.1").name_16 is None


@pytest.mark.parametrize("event_type", ["FailedToAuthenticateAtCsms", "SecurityProfileTooLow"])
def test_the_csms_own_refusals_of_credentials_are_critical(event_type: str) -> None:
    """A refused password or another station's certificate, and a connection below the
    station's profile, recorded by the CSMS itself, are critical: an alert on
    csms_security_events_total{severity="critical"} sees them. A station's own report of
    FailedToAuthenticateAtCsms stays a warning (2.0.1 Appendix 1: not critical)."""
    now = datetime.now(UTC)
    by_csms, _ = security_event(
        "CP-1", "2.0.1", event_type, event_id="e1", timestamp=now, tech_info=None,
        source=EventSource.CSMS,
    )  # fmt: skip
    assert by_csms.severity is Severity.CRITICAL
    assert by_csms.critical is False  # the spec's flag is kept as it is
    reported, record = security_event(
        "CP-1", "1.6", "FailedToAuthenticateAtCentralSystem", event_id="e2", timestamp=now,
        tech_info=None, source=EventSource.STATION,
    )  # fmt: skip
    assert reported.severity is record.data.severity is Severity.WARNING
    rejected, _ = security_event(
        "CP-1", "2.0.1", "CsrRejected", event_id="e3", timestamp=now, tech_info=None,
        source=EventSource.CSMS,
    )  # fmt: skip
    assert rejected.severity is Severity.WARNING
