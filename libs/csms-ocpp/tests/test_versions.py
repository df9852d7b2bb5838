"""Subprotocol negotiation: the newest version both sides speak wins."""

import pytest

from csms_ocpp.versions import OcppVersion, negotiate

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp1.6"], V16),
        (["ocpp2.0.1"], V201),
        (["ocpp2.1"], V21),
        (["ocpp1.6", "ocpp2.0.1"], V201),
        (["ocpp2.0.1", "ocpp1.6", "ocpp2.1"], V21),
        ([" OCPP2.0.1 "], V201),
        (["ocpp1.5", "ocpp1.6"], V16),
        (["ocpp2.0"], None),
        (["ocpp1.5"], None),
        (["", "json"], None),
        ([], None),
    ],
)
def test_negotiate_picks_the_newest_offered(offered: list[str], chosen: OcppVersion | None) -> None:
    assert negotiate(offered) is chosen


@pytest.mark.parametrize(
    ("version", "subprotocol", "number", "is_2x"),
    [
        (V16, "ocpp1.6", "1.6", False),
        (V201, "ocpp2.0.1", "2.0.1", True),
        (V21, "ocpp2.1", "2.1", True),
    ],
)
def test_version_names(version: OcppVersion, subprotocol: str, number: str, is_2x: bool) -> None:
    assert version.value == subprotocol
    assert version.number == number
    assert version.is_2x is is_2x
    assert OcppVersion.from_number(number) is version
    assert OcppVersion.from_number(subprotocol) is version


@pytest.mark.parametrize("number", ["2.0", "3", "", "ocpp"])
def test_from_number_refuses_unknown_versions(number: str) -> None:
    with pytest.raises(ValueError, match="is not a valid OcppVersion"):
        OcppVersion.from_number(number)
