"""FTP uploads for 1.6 chargers that upload diagnostics only by FTP (pyftpdlib).

A station logs in with the request's token as user name (the password is not checked:
the token is the secret) and may store files in an empty directory of its own; each
file it stores is taken into the log store for that request at once. The FTP server
runs its own loop in a thread; it asks the service's event loop to check tokens and
store files.
"""

import asyncio
import logging
import shutil
import tempfile
import threading
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

with warnings.catch_warnings():
    # pyftpdlib runs on the standard library's asynchat/asyncore before Python 3.12.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

from csms_api.problems import Problem
from csms_core.db import transaction
from csms_firmware.logs import service as logs

if TYPE_CHECKING:
    from csms_firmware.service import FirmwareService

logger = logging.getLogger(__name__)
WAIT_S = 30.0
CHUNK = 1024 * 1024


class _TokenAuthorizer(DummyAuthorizer):  # type: ignore[misc]
    def __init__(
        self, service: "FirmwareService", loop: asyncio.AbstractEventLoop, root: Path
    ) -> None:
        super().__init__()
        self._service = service
        self._loop = loop
        self._root = root

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        future = asyncio.run_coroutine_threadsafe(_check(self._service, username), self._loop)
        refusal = future.result(WAIT_S)
        if refusal is not None:
            raise AuthenticationFailed(refusal)
        home = Path(tempfile.mkdtemp(dir=self._root))
        if self.has_user(username):
            self.remove_user(username)
        self.add_user(username, "", str(home), perm="elw")

    def get_home_dir(self, username: str) -> str:
        return str(super().get_home_dir(username))


async def _check(service: "FirmwareService", token: str) -> str | None:
    async with service.factory() as session:
        try:
            request = await logs.request_of_token(session, token)
        except Problem as exc:
            return exc.detail
    return None if request.protocol == "ftp" else "this request's upload is not by FTP"


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, CHUNK):
            yield chunk


async def _take(service: "FirmwareService", token: str, path: Path) -> None:
    try:
        async with transaction(service.factory) as session:
            request = await logs.request_of_token(session, token, lock=True)
            await logs.receive_file(
                session,
                service.store,
                request,
                _file_chunks(path),
                filename=path.name,
                content_type=None,
                limit=service.settings.max_log_bytes,
                protocol="ftp",
            )
        service.outbox.poke()
    except Problem as exc:
        logger.warning("FTP upload %s refused: %s", path.name, exc.detail)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


def _handler(service: "FirmwareService", loop: asyncio.AbstractEventLoop) -> type[FTPHandler]:
    class Handler(FTPHandler):  # type: ignore[misc]
        banner = "CSMS log upload"

        def on_file_received(self, file: str) -> None:
            future = asyncio.run_coroutine_threadsafe(
                _take(service, self.username, Path(file)), loop
            )
            future.result(WAIT_S * 10)

        def on_incomplete_file_received(self, file: str) -> None:
            Path(file).unlink(missing_ok=True)

        def on_logout(self, username: str) -> None:
            home = Path(self.authorizer.get_home_dir(username))
            shutil.rmtree(home, ignore_errors=True)

    return Handler


async def serve_ftp(service: "FirmwareService", stopping: asyncio.Event) -> None:
    """Serve FTP uploads until ``stopping``."""
    settings = service.settings
    root = settings.store_dir / "ftp"
    root.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    handler = _handler(service, loop)
    handler.authorizer = _TokenAuthorizer(service, loop, root)
    if settings.ftp_passive_ports:
        first, _, last = settings.ftp_passive_ports.partition("-")
        handler.passive_ports = range(int(first), int(last or first) + 1)
    if settings.ftp_public_host:
        handler.masquerade_address = settings.ftp_public_host
    server = FTPServer((settings.ftp_host, settings.ftp_port), handler)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            server.serve_forever(timeout=0.2, blocking=False, handle_exit=False)
        server.close_all()

    logger.info("FTP uploads on %s:%d", settings.ftp_host, settings.ftp_port)
    serving = asyncio.create_task(asyncio.to_thread(serve), name="ftp server")
    try:
        await stopping.wait()
    finally:
        done.set()
        await serving
