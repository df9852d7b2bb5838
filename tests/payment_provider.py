"""A payment provider (PSP) the tests run on loopback: its API and its signed webhooks.

The provider keeps each payment's state and answers ``GET /payments/{payment_id}``
(what the billing service asks to confirm a webhook); ``webhook`` makes the signed
call the provider would send when a driver paid.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException

from csms_billing.payments.provider import SIGNATURE_HEADER, sign
from csms_cli.serving import serve_api
from tests.cluster import free_port

SECRET = b"loopback-provider-webhook-secret-0123456789"


@dataclass
class Provider:
    url: str
    states: dict[str, str] = field(default_factory=dict)

    def webhook(
        self,
        payment_id: str,
        station_id: str,
        evse_id: int,
        *,
        state: str = "authorized",
        amount: str = "25.00",
        secret: bytes = SECRET,
        at: float | None = None,
        timeout_s: int | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """(headers, body) of the provider's webhook; the payment takes ``state`` on its API
        (``started``: the driver is paying, with ``timeout_s`` to do it)."""
        self.states[payment_id] = state
        event: dict[str, object] = {
            "event_id": uuid.uuid4().hex,
            "payment_id": payment_id,
            "state": state,
            "station_id": station_id,
            "evse_id": evse_id,
            "amount": amount,
            "currency": "EUR",
        }
        if timeout_s is not None:
            event["timeout_s"] = timeout_s
        body = json.dumps(event).encode()
        stamp = int(at if at is not None else time.time())
        return {
            SIGNATURE_HEADER: sign(secret, body, stamp),
            "content-type": "application/json",
        }, body


def _app(provider: Provider) -> FastAPI:
    app = FastAPI()

    @app.get("/payments/{payment_id}")
    async def payment(payment_id: str) -> dict[str, str]:
        if payment_id not in provider.states:
            raise HTTPException(404)
        return {"payment_id": payment_id, "state": provider.states[payment_id]}

    return app


@asynccontextmanager
async def running_provider(port: int | None = None) -> AsyncIterator[Provider]:
    """The provider on loopback (``port``: where a CSMS configured before it started
    expects it; a free one otherwise)."""
    port = port or free_port()
    provider = Provider(f"http://127.0.0.1:{port}")
    stopping, listening = asyncio.Event(), asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(
            serve_api(_app(provider), "127.0.0.1", port, stopping, listening=listening)
        )
        await listening.wait()
        try:
            yield provider
        finally:
            stopping.set()
