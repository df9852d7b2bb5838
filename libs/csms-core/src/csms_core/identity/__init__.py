"""Station identity shared by the gateway (reads) and the sessions service (writes).

Security profile 1 (OCPP 2.0.1 Part 2 A00.FR.2xx; 1.6 security whitepaper):
HTTP Basic auth with a per-station password, stored only as a salted
PBKDF2 hash. The ``lenient`` flag relaxes schema validation for one station.
"""

from csms_core.identity.store import (
    SCHEMA,
    IdentityStore,
    StationIdentity,
    hash_password,
    migrate_identity,
    verify_password,
)

__all__ = [
    "SCHEMA",
    "IdentityStore",
    "StationIdentity",
    "hash_password",
    "migrate_identity",
    "verify_password",
]
