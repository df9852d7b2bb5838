"""REST: id tokens CRUD, and the authorization the stored token then gives."""

import httpx

from tests.kits.sessions import Harness, assert_problem

TOKEN = {"type": "ISO14443", "status": "Accepted", "expiry_date": "2030-01-01T00:00:00Z"}


async def test_put_get_list_delete(api: httpx.AsyncClient) -> None:
    created = await api.put("/api/v1/id-tokens/CARD-1", json=TOKEN)
    assert created.status_code == 200, created.text
    assert created.json()["id_token"] == "CARD-1"

    read = (await api.get("/api/v1/id-tokens/CARD-1")).json()
    assert (read["type"], read["status"], read["expiry_date"]) == (
        "ISO14443",
        "Accepted",
        "2030-01-01T00:00:00Z",
    )
    listed = (await api.get("/api/v1/id-tokens")).json()
    assert (listed["total"], [t["id_token"] for t in listed["items"]]) == (1, ["CARD-1"])

    assert (await api.delete("/api/v1/id-tokens/CARD-1")).status_code == 204
    assert_problem(await api.get("/api/v1/id-tokens/CARD-1"), 404)
    assert_problem(await api.delete("/api/v1/id-tokens/CARD-1"), 404)


async def test_put_updates_and_blocks(api: httpx.AsyncClient, sessions: Harness) -> None:
    await api.put("/api/v1/id-tokens/TAG-1", json=TOKEN | {"type": "idTag"})
    updated = await api.put(
        "/api/v1/id-tokens/TAG-1", json={"type": "idTag", "status": "Blocked", "group_id": "G1"}
    )

    assert (updated.json()["status"], updated.json()["expiry_date"]) == ("Blocked", None)
    event = await sessions.call("CP-1", "Authorize", {"idTag": "TAG-1"})
    answer = await sessions.answer()
    await sessions.processed(event)
    assert answer.payload == {"idTagInfo": {"status": "Blocked", "parentIdTag": "G1"}}


async def test_same_token_with_two_types_needs_the_type(api: httpx.AsyncClient) -> None:
    await api.put("/api/v1/id-tokens/CARD-1", json=TOKEN)
    await api.put("/api/v1/id-tokens/CARD-1", json=TOKEN | {"type": "ISO15693"})

    assert_problem(await api.get("/api/v1/id-tokens/CARD-1"), 409)
    chosen = await api.get("/api/v1/id-tokens/CARD-1", params={"type": "ISO15693"})
    assert chosen.json()["type"] == "ISO15693"
    assert (
        await api.delete("/api/v1/id-tokens/CARD-1", params={"type": "ISO15693"})
    ).status_code == 204
    assert (await api.get("/api/v1/id-tokens/CARD-1")).json()["type"] == "ISO14443"


async def test_bad_token_bodies_are_422_problems(api: httpx.AsyncClient) -> None:
    for body in (
        {"type": "ISO14443", "status": "Maybe"},
        {"status": "Accepted"},
        {"type": "x" * 21, "status": "Accepted"},
        {"type": "ISO14443", "status": "Accepted", "expiry_date": "2030-01-01T00:00:00"},
        TOKEN | {"colour": "red"},
    ):
        assert_problem(await api.put("/api/v1/id-tokens/CARD-1", json=body), 422)
    assert_problem(await api.put("/api/v1/id-tokens/" + "x" * 256, json=TOKEN), 422)
