"""Where images and log files are kept: a content-addressed store behind a small interface."""

from csms_firmware.store.blobs import BlobStore, LocalBlobStore, StoredBlob, TooLarge, Writer

__all__ = ["BlobStore", "LocalBlobStore", "StoredBlob", "TooLarge", "Writer"]
