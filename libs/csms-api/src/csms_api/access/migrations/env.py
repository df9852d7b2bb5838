from csms_api.access.store import ApiKey
from csms_core.db import run_migrations_online

run_migrations_online(ApiKey.metadata)
