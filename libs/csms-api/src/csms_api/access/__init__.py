"""API keys for apps and partners (schema ``access``, owned by ``libs``)."""

from csms_api.access.store import (
    SCHEMA,
    ApiKey,
    ApiKeyStore,
    KeyCheck,
    Verified,
    VerifiedKeys,
    looks_like_api_key,
    migrate_access,
)

__all__ = [
    "SCHEMA",
    "ApiKey",
    "ApiKeyStore",
    "KeyCheck",
    "Verified",
    "VerifiedKeys",
    "looks_like_api_key",
    "migrate_access",
]
