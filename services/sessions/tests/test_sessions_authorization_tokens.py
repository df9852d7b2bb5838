"""Authorization with every token type, restrictions and groups; REST of id tokens.

OCTT: TC_004_1 / TC_023_x (1.6), TC_C_02 / TC_C_06 / TC_C_07 / TC_C_39 (2.0.1).
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from csms_ocpp import OcppVersion, schemas
from csms_sessions.tokens.models import TOKEN_TYPES_V21, TOKEN_TYPES_V201
from tests.kits.sessions import Harness, assert_problem

FUTURE = "2100-01-01T00:00:00Z"
TYPES_ONLY_IN_V21 = sorted(TOKEN_TYPES_V21 - TOKEN_TYPES_V201)


async def put_token(api: httpx.AsyncClient, id_token: str, **body: Any) -> dict[str, Any]:
    response = await api.put(
        f"/api/v1/id-tokens/{id_token}", json={"type": "ISO14443", "status": "Accepted"} | body
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def authorize(
    sessions: Harness,
    version: OcppVersion,
    id_token: str,
    kind: str = "ISO14443",
    station_id: str = "CP-1",
) -> dict[str, Any]:
    """The idTagInfo / idTokenInfo the station gets, checked against the response schema."""
    payload: dict[str, Any] = (
        {"idToken": {"idToken": id_token, "type": kind}} if version.is_2x else {"idTag": id_token}
    )
    event = await sessions.call(station_id, "Authorize", payload, version=version)
    answer = await sessions.answer()
    await sessions.processed(event)
    assert answer.error_code is None, answer.error_description
    assert answer.payload is not None
    assert schemas.validate(version, "Authorize", answer.payload, response=True) is None
    info: dict[str, Any] = answer.payload["idTokenInfo" if version.is_2x else "idTagInfo"]
    return info


@pytest.mark.parametrize("kind", sorted(TOKEN_TYPES_V201 - {"NoAuthorization"}))
async def test_authorize_every_v201_token_type(
    api: httpx.AsyncClient, sessions: Harness, kind: str
) -> None:
    await put_token(api, "TOKEN-1", type=kind, group_id="FLEET")

    assert await authorize(sessions, OcppVersion.V201, "TOKEN-1", kind) == {
        "status": "Accepted",
        "groupIdToken": {"idToken": "FLEET", "type": "Central"},
    }
    other = "Local" if kind != "Local" else "KeyCode"
    assert await authorize(sessions, OcppVersion.V201, "TOKEN-1", other) == {"status": "Unknown"}


@pytest.mark.parametrize("kind", TYPES_ONLY_IN_V21)
async def test_authorize_v21_token_types(
    api: httpx.AsyncClient, sessions: Harness, kind: str
) -> None:
    await put_token(api, "TOKEN-21", type=kind)

    assert await authorize(sessions, OcppVersion.V21, "TOKEN-21", kind) == {"status": "Accepted"}


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21])
async def test_no_authorization_is_accepted_without_lookup(
    sessions: Harness, version: OcppVersion
) -> None:
    assert await authorize(sessions, version, "", "NoAuthorization") == {"status": "Accepted"}


@pytest.mark.parametrize(
    ("body", "v16", "v201"),
    [
        ({"status": "Blocked"}, "Blocked", "Blocked"),  # TC_023_3, TC_C_06
        ({"expiry_date": "2020-01-01T00:00:00Z"}, "Expired", "Expired"),  # TC_023_2, TC_C_07
        ({"status": "Invalid"}, "Invalid", "Invalid"),
        ({"status": "NoCredit"}, "Invalid", "NoCredit"),
        ({"allowed_station_ids": ["CP-OTHER"]}, "Invalid", "NotAtThisLocation"),
    ],
)
async def test_tc_023_tc_c_06_tc_c_07_refusals(
    api: httpx.AsyncClient, sessions: Harness, body: dict[str, Any], v16: str, v201: str
) -> None:
    await put_token(api, "TAG-1", **body)

    assert (await authorize(sessions, OcppVersion.V16, "TAG-1"))["status"] == v16
    assert (await authorize(sessions, OcppVersion.V201, "TAG-1"))["status"] == v201


async def test_tc_023_1_tc_c_02_unknown(sessions: Harness) -> None:
    assert await authorize(sessions, OcppVersion.V16, "NOBODY") == {"status": "Invalid"}
    assert await authorize(sessions, OcppVersion.V21, "NOBODY") == {"status": "Unknown"}


async def test_restricted_token_is_accepted_at_its_station_with_its_evses(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await put_token(
        api, "TAG-1", allowed_station_ids=["CP-1"], allowed_evse_ids=[2], expiry_date=FUTURE
    )

    assert await authorize(sessions, OcppVersion.V201, "TAG-1") == {
        "status": "Accepted",
        "cacheExpiryDateTime": "2100-01-01T00:00:00.000Z",
        "evseId": [2],
    }
    assert await authorize(sessions, OcppVersion.V16, "TAG-1") == {
        "status": "Accepted",
        "expiryDate": "2100-01-01T00:00:00.000Z",
    }
    elsewhere = await authorize(sessions, OcppVersion.V201, "TAG-1", station_id="CP-2")
    assert elsewhere == {"status": "NotAtThisLocation", "evseId": [2]}


async def test_tc_c_39_tc_053_group_is_parent_id_tag_and_group_id_token(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await put_token(api, "TAG-1", type="idTag", group_id="PARENT-1")

    assert await authorize(sessions, OcppVersion.V16, "TAG-1") == {
        "status": "Accepted",
        "parentIdTag": "PARENT-1",
    }
    assert await authorize(sessions, OcppVersion.V201, "TAG-1") == {
        "status": "Accepted",
        "groupIdToken": {"idToken": "PARENT-1", "type": "Central"},
    }


async def test_expired_by_date_after_being_accepted(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    # Long enough for the first answer on a loaded machine (it includes the 0.1 s
    # completion flush the harness waits for).
    soon = datetime.now(UTC) + timedelta(seconds=2)
    await put_token(api, "TAG-1", expiry_date=soon.isoformat())
    assert (await authorize(sessions, OcppVersion.V16, "TAG-1"))["status"] == "Accepted"

    await asyncio.sleep((soon - datetime.now(UTC)).total_seconds() + 0.05)
    assert (await authorize(sessions, OcppVersion.V16, "TAG-1"))["status"] == "Expired"


async def test_rest_token_restrictions_round_trip(api: httpx.AsyncClient) -> None:
    stored = await put_token(
        api, "CARD-1", type="VIN", allowed_station_ids=["CP-1", "CP-2"], allowed_evse_ids=[1]
    )

    read = (await api.get("/api/v1/id-tokens/CARD-1")).json()
    assert read == stored
    assert (read["type"], read["allowed_station_ids"], read["allowed_evse_ids"]) == (
        "VIN",
        ["CP-1", "CP-2"],
        [1],
    )


async def test_list_filters_by_type_status_and_group(api: httpx.AsyncClient) -> None:
    await put_token(api, "A", group_id="G1")
    await put_token(api, "B", status="Blocked", group_id="G1")
    await put_token(api, "C", type="eMAID")

    async def ids(**params: str) -> list[str]:
        response = await api.get("/api/v1/id-tokens", params=params)
        assert response.status_code == 200, response.text
        assert response.json()["total"] == len(response.json()["items"])
        return [item["id_token"] for item in response.json()["items"]]

    assert await ids(type="eMAID") == ["C"]
    assert await ids(status="Blocked") == ["B"]
    assert await ids(group_id="G1") == ["A", "B"]
    assert await ids(group_id="G1", status="Accepted") == ["A"]
    page = (await api.get("/api/v1/id-tokens", params={"limit": 1, "offset": 1})).json()
    assert ([t["id_token"] for t in page["items"]], page["total"]) == (["B"], 3)
    assert_problem(await api.get("/api/v1/id-tokens", params={"status": "Maybe"}), 422)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "ISO1443", "status": "Accepted"},  # a typo of a type
        {"type": "ISO14443", "status": "NotAtThisLocation"},  # a decision, not settable
        {"type": "ISO14443", "status": "Accepted", "allowed_station_ids": ["a/b"]},
        {"type": "ISO14443", "status": "Accepted", "allowed_evse_ids": [0]},
        {"type": "ISO14443", "status": "Accepted", "allowed_station_ids": "CP-1"},
    ],
)
async def test_bad_restriction_bodies_are_422_and_store_nothing(
    api: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    body_problem = assert_problem(await api.put("/api/v1/id-tokens/CARD-1", json=body), 422)

    assert body_problem["type"] == "urn:csms:problem:invalid-request"
    assert_problem(await api.get("/api/v1/id-tokens/CARD-1"), 404)
