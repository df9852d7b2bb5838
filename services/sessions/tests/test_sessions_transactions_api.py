"""REST: /sessions (filters, pagination, newest first), a session, its meter values."""

import httpx

from csms_ocpp import OcppVersion
from tests.kits.sessions import Harness, assert_problem
from tests.kits.transactions import only_session, register_v2, send, transaction_event

V201 = OcppVersion.V201
EVSE = {"id": 1, "connectorId": 1}


async def start_v16(sessions: Harness, station_id: str, id_tag: str, timestamp: str) -> int:
    payload = {"connectorId": 1, "idTag": id_tag, "meterStart": 0, "timestamp": timestamp}
    answer = await send(sessions, "StartTransaction", payload, OcppVersion.V16, station_id)
    assert answer is not None
    transaction_id: int = answer["transactionId"]
    return transaction_id


async def three_sessions(sessions: Harness) -> None:
    """CP-1: TAG-A at 10:00 (ended), TAG-B at 11:00; CP-2: TAG-A at 12:00."""
    first = await start_v16(sessions, "CP-1", "TAG-A", "2025-01-01T10:00:00Z")
    stop = {"transactionId": first, "meterStop": 10, "timestamp": "2025-01-01T10:30:00Z"}
    await send(sessions, "StopTransaction", stop, OcppVersion.V16, "CP-1")
    await start_v16(sessions, "CP-1", "TAG-B", "2025-01-01T11:00:00Z")
    await start_v16(sessions, "CP-2", "TAG-A", "2025-01-01T12:00:00Z")


def started(page: dict[str, object]) -> list[str]:
    items = page["items"]
    assert isinstance(items, list)
    return [item["started_at"] for item in items]


async def test_list_newest_first_with_pagination(api: httpx.AsyncClient, sessions: Harness) -> None:
    await three_sessions(sessions)

    everything = (await api.get("/api/v1/sessions")).json()
    page = (await api.get("/api/v1/sessions", params={"limit": 1, "offset": 1})).json()

    assert started(everything) == [
        "2025-01-01T12:00:00Z",
        "2025-01-01T11:00:00Z",
        "2025-01-01T10:00:00Z",
    ]
    assert (everything["total"], everything["limit"], everything["offset"]) == (3, 50, 0)
    assert (started(page), page["total"]) == (["2025-01-01T11:00:00Z"], 3)


async def test_list_filters(api: httpx.AsyncClient, sessions: Harness) -> None:
    await three_sessions(sessions)

    async def filtered(**params: str) -> list[str]:
        response = await api.get("/api/v1/sessions", params=params)
        assert response.status_code == 200, response.text
        return started(response.json())

    assert await filtered(station_id="CP-1") == ["2025-01-01T11:00:00Z", "2025-01-01T10:00:00Z"]
    assert await filtered(id_token="TAG-A") == ["2025-01-01T12:00:00Z", "2025-01-01T10:00:00Z"]
    assert await filtered(state="ended") == ["2025-01-01T10:00:00Z"]
    assert await filtered(
        started_after="2025-01-01T10:30:00Z", started_before="2025-01-01T12:00:00Z"
    ) == ["2025-01-01T11:00:00Z"]


async def test_station_sessions_active(api: httpx.AsyncClient, sessions: Harness) -> None:
    await three_sessions(sessions)

    body = (await api.get("/api/v1/stations/CP-1/sessions", params={"state": "active"})).json()

    assert started(body) == ["2025-01-01T11:00:00Z"]
    assert body["items"][0]["id_token"] == "TAG-B"
    assert body["items"][0]["state"] == "active"


async def test_bad_filters_are_problems(api: httpx.AsyncClient, sessions: Harness) -> None:
    bad = [
        ("/api/v1/sessions", {"state": "finished"}),
        ("/api/v1/sessions", {"started_after": "yesterday"}),
        ("/api/v1/sessions", {"started_after": "2025-01-01T10:00:00"}),  # no offset
        ("/api/v1/sessions", {"limit": "0"}),
        (
            "/api/v1/sessions",
            {"started_after": "2025-01-02T00:00:00Z", "started_before": "2025-01-01T00:00:00Z"},
        ),
        ("/api/v1/stations/CP-1/sessions", {"state": "nope"}),
        ("/api/v1/sessions/not-a-uuid", {}),
    ]
    for path, params in bad:
        assert_problem(await api.get(path, params=params), 422)


async def test_unknown_session_is_404(api: httpx.AsyncClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"

    body = assert_problem(await api.get(f"/api/v1/sessions/{missing}"), 404)
    series = assert_problem(await api.get(f"/api/v1/sessions/{missing}/meter-values"), 404)

    assert body["type"] == series["type"] == "urn:csms:problem:unknown-session"


async def test_session_detail_and_meter_values(api: httpx.AsyncClient, sessions: Harness) -> None:
    power = {
        "timestamp": "2025-01-01T10:10:00Z",
        "sampledValue": [
            {"value": 7.4, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}}
        ],
    }
    events = [
        transaction_event(
            "Started",
            0,
            "2025-01-01T10:00:00Z",
            evse=EVSE,
            meter=[register_v2("2025-01-01T10:00:00Z", 100, "Transaction.Begin")],
        ),
        transaction_event("Updated", 1, "2025-01-01T10:10:00Z", meter=[power]),
        transaction_event(
            "Updated", 2, "2025-01-01T10:20:00Z", meter=[register_v2("2025-01-01T10:20:00Z", 900)]
        ),
    ]
    for event in events:
        await send(sessions, "TransactionEvent", event, V201)
    session_id = (await only_session(sessions)).session_id

    detail = (await api.get(f"/api/v1/sessions/{session_id}")).json()
    series = (await api.get(f"/api/v1/sessions/{session_id}/meter-values")).json()
    energy = (
        await api.get(
            f"/api/v1/sessions/{session_id}/meter-values",
            params={
                "measurand": "Energy.Active.Import.Register",
                "from": "2025-01-01T10:05:00Z",
                "to": "2025-01-01T11:00:00Z",
            },
        )
    ).json()
    limited = (
        await api.get(f"/api/v1/sessions/{session_id}/meter-values", params={"limit": 1})
    ).json()

    assert (detail["state"], detail["energy_wh"], detail["power_w"]) == ("active", 800.0, 7400.0)
    assert (detail["transaction_id"], detail["evse_id"], detail["last_seq_no"]) == ("tx-1", 1, 2)
    assert [(s["timestamp"], s["measurand"], s["value"], s["unit"]) for s in series["items"]] == [
        ("2025-01-01T10:00:00Z", "Energy.Active.Import.Register", 100.0, "Wh"),
        ("2025-01-01T10:10:00Z", "Power.Active.Import", 7400.0, "W"),
        ("2025-01-01T10:20:00Z", "Energy.Active.Import.Register", 900.0, "Wh"),
    ]
    assert [s["value"] for s in energy["items"]] == [900.0]
    assert [s["value"] for s in limited["items"]] == [100.0]
    assert_problem(
        await api.get(
            f"/api/v1/sessions/{session_id}/meter-values",
            params={"from": "2025-01-01T11:00:00Z", "to": "2025-01-01T10:00:00Z"},
        ),
        422,
    )


async def test_flags_late_data_and_messages_over_rest(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    """A session whose stop came twice: flagged, late data counted, every message kept."""
    transaction_id = await start_v16(sessions, "CP-1", "TAG-A", "2025-01-01T10:00:00Z")
    for meter_stop, at in ((10, "2025-01-01T10:30:00Z"), (15, "2025-01-01T10:31:00Z")):
        stop = {"transactionId": transaction_id, "meterStop": meter_stop, "timestamp": at}
        await send(sessions, "StopTransaction", stop, OcppVersion.V16, "CP-1")
    charging = await only_session(sessions, "CP-1")

    body = (await api.get(f"/api/v1/sessions/{charging.session_id}")).json()
    late = await api.get(
        f"/api/v1/sessions/{charging.session_id}/messages", params={"disposition": "late"}
    )
    everything = (await api.get(f"/api/v1/sessions/{charging.session_id}/messages")).json()

    assert (body["energy_wh"], body["final"], body["late_messages"]) == (10.0, True, 1)
    late_flag, repeated_flag = body["flags"]
    assert (late_flag["reason"], repeated_flag["reason"]) == ("late_data", "repeated_stop")
    assert late_flag["detail"].startswith("StopTransaction received at ")
    assert repeated_flag["detail"] == "another StopTransaction at 2025-01-01T10:31:00.000Z"
    assert late.status_code == 200
    [message] = late.json()["items"]
    assert (message["action"], message["disposition"], message["payload"]["meterStop"]) == (
        "StopTransaction",
        "late",
        15,
    )
    assert [m["disposition"] for m in everything["items"]] == ["applied", "applied", "late"]
    assert everything["total"] == 3


async def test_messages_of_unknown_session_404_and_bad_disposition_422(
    api: httpx.AsyncClient,
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_problem(await api.get(f"/api/v1/sessions/{unknown}/messages"), 404)
    bad = await api.get(f"/api/v1/sessions/{unknown}/messages", params={"disposition": "odd"})
    assert_problem(bad, 422)
