"""The audit trail (docs/security.md "Audit trail"): every state-changing REST call and
every command sent to a station, with who, what, which station, when and the outcome.

Every service writes it through ``AuditLog`` into ``access.audit_entry`` (its REST app by
``AuditMiddleware``, its commands by ``CommandClient(audit=...)``); the sessions service
serves it at ``GET /api/v1/audit`` and relays it to ``csms.audit`` (``AuditRelay``).
"""

from csms_api.audit.log import AuditLog, actor_kind
from csms_api.audit.middleware import AuditMiddleware
from csms_api.audit.relay import AuditRelay
from csms_api.audit.store import AuditEntry

__all__ = ["AuditEntry", "AuditLog", "AuditMiddleware", "AuditRelay", "actor_kind"]
