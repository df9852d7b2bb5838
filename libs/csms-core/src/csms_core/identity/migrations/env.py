from csms_core.db import run_migrations_online
from csms_core.identity.store import StationIdentity

run_migrations_online(StationIdentity.metadata)
