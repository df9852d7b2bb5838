"""Station identity shared by the gateway (reads) and the services (write).

Security profile 1 (OCPP 2.0.1 Part 2 A00.FR.2xx; 1.6 security whitepaper):
HTTP Basic auth with a per-station password, stored only as a salted
PBKDF2 hash. The ``lenient`` flag relaxes schema validation for one station;
``security_profile`` is the lowest profile it may connect with. The station
directory (``StationSite``) says which site each station is on: the smart
charging service writes it, every REST API reads it to limit site-limited tokens.
"""

from csms_core.identity.store import (
    SCHEMA,
    IdentityStore,
    StationIdentity,
    StationSite,
    assign_site,
    hash_password,
    migrate_identity,
    record_registration,
    site_of,
    stations_on,
    unassign_site,
    verify_password,
)

__all__ = [
    "SCHEMA",
    "IdentityStore",
    "StationIdentity",
    "StationSite",
    "assign_site",
    "hash_password",
    "migrate_identity",
    "record_registration",
    "site_of",
    "stations_on",
    "unassign_site",
    "verify_password",
]
