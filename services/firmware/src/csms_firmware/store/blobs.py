"""A content-addressed blob store: a file is named by its SHA-256, written once.

``LocalBlobStore`` keeps blobs in a directory (``ab/cd/abcd...``); another store (an
object store, say) implements the same ``BlobStore`` protocol. A blob is streamed to a
temporary file while its hashes are computed, and moved into place only when complete,
so a reader never sees half a file and an aborted upload leaves nothing behind.
"""

import asyncio
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, Self


class TooLarge(Exception):
    """More bytes than the limit: the write is abandoned."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class StoredBlob:
    sha256: str
    md5: str
    size: int


class Writer(Protocol):
    """One blob being written: ``write`` chunks, then ``commit``; anything else discards it."""

    async def write(self, chunk: bytes) -> None: ...

    def summary(self) -> StoredBlob:
        """Hashes and size of what was written so far."""
        ...

    async def commit(self) -> StoredBlob: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class BlobStore(Protocol):
    def writer(self, limit: int) -> Writer: ...

    def path(self, sha256: str) -> Path | None:
        """A local file of the blob for serving, or None if there is no such blob."""
        ...

    async def delete(self, sha256: str) -> None: ...


@dataclass
class _LocalWriter:
    root: Path
    limit: int
    _file: IO[bytes] | None = None
    _sha256: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    _md5: "hashlib._Hash" = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    _size: int = 0
    _done: bool = False

    async def __aenter__(self) -> Self:
        incoming = self.root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        self._file = tempfile.NamedTemporaryFile(dir=incoming, delete=False)  # noqa: SIM115
        return self

    async def write(self, chunk: bytes) -> None:
        assert self._file is not None  # noqa: S101 - used inside ``async with`` only
        self._size += len(chunk)
        if self._size > self.limit:
            raise TooLarge(self.limit)
        self._sha256.update(chunk)
        self._md5.update(chunk)
        await asyncio.to_thread(self._file.write, chunk)

    def summary(self) -> StoredBlob:
        return StoredBlob(self._sha256.hexdigest(), self._md5.hexdigest(), self._size)

    async def commit(self) -> StoredBlob:
        assert self._file is not None  # noqa: S101
        blob = self.summary()
        await asyncio.to_thread(self._finish, blob.sha256)
        self._done = True
        return blob

    def _finish(self, sha256: str) -> None:
        assert self._file is not None  # noqa: S101
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        target = _blob_path(self.root, sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        Path(self._file.name).replace(target)  # atomic; an identical blob is simply replaced

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._file is not None and not self._done:
            self._file.close()
            await asyncio.to_thread(Path(self._file.name).unlink, missing_ok=True)


def _blob_path(root: Path, sha256: str) -> Path:
    return root / "blobs" / sha256[:2] / sha256[2:4] / sha256


class LocalBlobStore:
    """Blobs in a local directory (the default store)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def writer(self, limit: int) -> Writer:
        return _LocalWriter(self.root, limit)

    def path(self, sha256: str) -> Path | None:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            return None
        path = _blob_path(self.root, sha256)
        return path if path.is_file() else None

    async def delete(self, sha256: str) -> None:
        path = self.path(sha256)
        if path is not None:
            await asyncio.to_thread(path.unlink, missing_ok=True)
