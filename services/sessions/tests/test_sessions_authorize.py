"""Authorize, the interim transaction answers and DataTransfer (OCTT TC_023_x, C02/C06/C07, P02)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from csms_ocpp import OcppVersion, schemas
from csms_sessions.tokens.models import IdToken, TokenStatus
from tests.kits.sessions import Harness


async def add_token(
    sessions: Harness,
    id_token: str,
    status: TokenStatus = TokenStatus.ACCEPTED,
    *,
    kind: str = "ISO14443",
    expiry_date: datetime | None = None,
    group_id: str | None = None,
) -> None:
    async with sessions.service.factory() as session, session.begin():
        session.add(
            IdToken(
                id_token=id_token,
                type=kind,
                status=status,
                expiry_date=expiry_date,
                group_id=group_id,
            )
        )


async def decide(
    sessions: Harness, action: str, payload: dict[str, Any], version: OcppVersion
) -> dict[str, Any]:
    """Send the call and return the answer, checked against the response schema."""
    event = await sessions.call("CP-1", action, payload, version=version)
    answer = await sessions.answer()
    assert answer.error_code is None, answer.error_description
    assert answer.payload is not None
    assert schemas.validate(version, action, answer.payload, response=True) is None
    await sessions.processed(event)
    return answer.payload


async def authorize_v16(sessions: Harness, id_tag: str) -> dict[str, Any]:
    answer = await decide(sessions, "Authorize", {"idTag": id_tag}, OcppVersion.V16)
    info: dict[str, Any] = answer["idTagInfo"]
    return info


async def authorize_v201(
    sessions: Harness, id_token: str, kind: str = "ISO14443"
) -> dict[str, Any]:
    payload = {"idToken": {"idToken": id_token, "type": kind}}
    answer = await decide(sessions, "Authorize", payload, OcppVersion.V201)
    info: dict[str, Any] = answer["idTokenInfo"]
    return info


FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


async def test_tc_004_1_authorize_accepted_v16(sessions: Harness) -> None:
    await add_token(sessions, "TAG-1", expiry_date=FUTURE, group_id="FLEET-1")

    assert await authorize_v16(sessions, "TAG-1") == {
        "status": "Accepted",
        "expiryDate": "2100-01-01T00:00:00.000Z",
        "parentIdTag": "FLEET-1",
    }


async def test_tc_023_1_authorize_invalid_v16(sessions: Harness) -> None:
    assert await authorize_v16(sessions, "NOBODY") == {"status": "Invalid"}


async def test_tc_023_2_authorize_expired_v16(sessions: Harness) -> None:
    await add_token(sessions, "TAG-1", expiry_date=datetime.now(UTC) - timedelta(days=1))

    assert (await authorize_v16(sessions, "TAG-1"))["status"] == "Expired"


async def test_tc_023_3_authorize_blocked_v16(sessions: Harness) -> None:
    await add_token(sessions, "TAG-1", TokenStatus.BLOCKED, kind="idTag")

    assert await authorize_v16(sessions, "TAG-1") == {"status": "Blocked"}


async def test_authorize_accepted_v201(sessions: Harness) -> None:
    await add_token(sessions, "TOKEN-1", expiry_date=FUTURE, group_id="FLEET-1")

    assert await authorize_v201(sessions, "TOKEN-1") == {
        "status": "Accepted",
        "cacheExpiryDateTime": "2100-01-01T00:00:00.000Z",
        "groupIdToken": {"idToken": "FLEET-1", "type": "Central"},
    }


async def test_tc_c_02_authorize_unknown_v201(sessions: Harness) -> None:
    assert await authorize_v201(sessions, "NOBODY") == {"status": "Unknown"}


async def test_tc_c_02_authorize_other_type_is_unknown_v201(sessions: Harness) -> None:
    await add_token(sessions, "TOKEN-1", kind="eMAID")

    assert await authorize_v201(sessions, "TOKEN-1", "ISO14443") == {"status": "Unknown"}


async def test_tc_c_06_authorize_blocked_v201(sessions: Harness) -> None:
    await add_token(sessions, "TOKEN-1", TokenStatus.BLOCKED)

    assert await authorize_v201(sessions, "TOKEN-1") == {"status": "Blocked"}


async def test_tc_c_07_authorize_expired_v201(sessions: Harness) -> None:
    await add_token(sessions, "TOKEN-1", expiry_date=datetime.now(UTC) - timedelta(seconds=1))

    assert await authorize_v201(sessions, "TOKEN-1") == {"status": "Expired"}


async def test_token_of_a_2x_type_authorizes_a_16_id_tag(sessions: Harness) -> None:
    await add_token(sessions, "CARD-1", kind="ISO14443")

    assert await authorize_v16(sessions, "CARD-1") == {"status": "Accepted"}


async def test_start_transaction_allocates_distinct_ids(sessions: Harness) -> None:
    await add_token(sessions, "TAG-1")
    start = {
        "connectorId": 1,
        "idTag": "TAG-1",
        "meterStart": 0,
        "timestamp": "2025-01-01T10:00:00Z",
    }

    first = await decide(sessions, "StartTransaction", start, OcppVersion.V16)
    # A later start (a re-sent identical one keeps its id: see test_sessions_transactions_v16).
    later = start | {"timestamp": "2025-01-01T12:00:00Z"}
    second = await decide(sessions, "StartTransaction", later, OcppVersion.V16)

    assert first["idTagInfo"] == {"status": "Accepted"}
    assert isinstance(first["transactionId"], int)
    assert second["transactionId"] != first["transactionId"]


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ({}, {}),
        ({"idTag": "NOBODY"}, {"idTagInfo": {"status": "Invalid"}}),
    ],
)
async def test_stop_transaction(
    sessions: Harness, stop: dict[str, Any], expected: dict[str, Any]
) -> None:
    payload = {"transactionId": 1, "meterStop": 10, "timestamp": "2025-01-01T11:00:00Z", **stop}

    assert await decide(sessions, "StopTransaction", payload, OcppVersion.V16) == expected


async def test_transaction_event_with_id_token_is_authorized(sessions: Harness) -> None:
    await add_token(sessions, "TOKEN-1", TokenStatus.BLOCKED)
    payload = {
        "eventType": "Started",
        "timestamp": "2025-01-01T10:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx-1"},
        "idToken": {"idToken": "TOKEN-1", "type": "ISO14443"},
    }

    answer = await decide(sessions, "TransactionEvent", payload, OcppVersion.V201)

    assert answer == {"idTokenInfo": {"status": "Blocked"}}


@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201])
async def test_tc_064_tc_p_02_data_transfer_unknown_vendor(
    sessions: Harness, version: OcppVersion
) -> None:
    payload = {"vendorId": "com.example", "messageId": "hello", "data": "x"}

    assert await decide(sessions, "DataTransfer", payload, version) == {"status": "UnknownVendorId"}
