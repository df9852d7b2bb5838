"""The handshake's identity lookups, coalesced: a storm's many in one statement each."""

import asyncio
from collections.abc import Collection

import pytest

from csms_core.identity import IdentityStore, StationIdentity
from csms_gateway.identities import CoalescedIdentities


class FailingStore(IdentityStore):
    """The identity database is down."""

    def __init__(self) -> None:
        pass

    async def get_many(self, station_ids: Collection[str]) -> dict[str, StationIdentity]:
        await asyncio.sleep(0)
        raise ConnectionError("the database is down")


async def test_concurrent_lookups_share_statements(identities: IdentityStore) -> None:
    for n in range(0, 300, 2):  # every other station has an identity
        await identities.save(f"CP-{n}", lenient=n % 4 == 0)
    lookups = CoalescedIdentities(identities, max_batch=100)

    found = await asyncio.gather(*(lookups.get(f"CP-{n}") for n in range(300)))

    assert [identity.station_id if identity else None for identity in found] == [
        f"CP-{n}" if n % 2 == 0 else None for n in range(300)
    ]
    assert [identity.lenient for identity in found if identity] == [
        n % 4 == 0 for n in range(0, 300, 2)
    ]
    # All 300 asked before the first query ran: 3 statements of 100, not 300 sessions.
    assert lookups.queries == 3


async def test_a_lookup_after_a_change_sees_it(identities: IdentityStore) -> None:
    lookups = CoalescedIdentities(identities)
    assert await lookups.get("CP-1") is None

    await identities.save("CP-1", lenient=True)

    identity = await lookups.get("CP-1")
    assert identity is not None and identity.lenient


async def test_a_database_failure_reaches_every_waiting_lookup() -> None:
    lookups = CoalescedIdentities(FailingStore())

    outcomes = await asyncio.gather(
        *(lookups.get(f"CP-{n}") for n in range(5)), return_exceptions=True
    )

    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)


async def test_a_lookup_given_up_leaves_the_others_theirs(identities: IdentityStore) -> None:
    await identities.save("CP-1")
    lookups = CoalescedIdentities(identities)
    first = asyncio.create_task(lookups.get("CP-1"))
    second = asyncio.create_task(lookups.get("CP-1"))
    await asyncio.sleep(0)

    first.cancel()

    with pytest.raises(asyncio.CancelledError):
        await first
    identity = await second
    assert identity is not None and identity.station_id == "CP-1"
