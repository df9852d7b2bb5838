"""The station id in the WebSocket URL (OCPP 2.0.1 Part 4 §3.1.1)."""

import pytest

from csms_ocpp.station_id import InvalidStationId, parse_station_id


@pytest.mark.parametrize(
    ("segment", "station_id"),
    [
        ("CP-001", "CP-001"),
        ("cp_1.site@operator", "cp_1.site@operator"),
        ("A*B-C_D=E:F+G|H@I.J", "A*B-C_D=E:F+G|H@I.J"),
        ("CP%2A001", "CP*001"),
        ("CP%3A001", "CP:001"),
        ("x" * 48, "x" * 48),
        ("%41" * 48, "A" * 48),
    ],
)
def test_valid_station_ids(segment: str, station_id: str) -> None:
    assert parse_station_id(segment) == station_id


@pytest.mark.parametrize(
    ("segment", "reason"),
    [
        ("", "station id is empty"),
        ("x" * 49, "station id is 49 characters; at most 48 allowed"),
        ("%41" * 49, "station id is 49 characters; at most 48 allowed"),
        ("CP 001", "may contain only"),
        ("CP%20001", "may contain only"),
        ("CP%2F001", "may contain only"),
        ("../CP", "may contain only"),
        ("CP#1", "may contain only"),
        ("CP%00", "may contain only"),
        ("Ladesäule", "may contain only"),
        ("%", "may contain only"),
        ("%ff", "not percent-encoded UTF-8"),
        ("CP%C3", "not percent-encoded UTF-8"),
    ],
)
def test_invalid_station_ids_are_refused(segment: str, reason: str) -> None:
    with pytest.raises(InvalidStationId, match=reason):
        parse_station_id(segment)
