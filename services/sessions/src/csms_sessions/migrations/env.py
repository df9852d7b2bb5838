from csms_core.db import run_migrations_online
from csms_sessions.inbox import ProcessedEvent

# Every table of the service shares SQLModel's metadata.
run_migrations_online(ProcessedEvent.metadata)
