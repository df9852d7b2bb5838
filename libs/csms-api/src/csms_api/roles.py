"""Who may do what over REST: four roles, and the access level each route declares.

``viewer`` reads, ``operator`` also sends commands and manages sessions, reservations
and limits, ``admin`` also manages station credentials, raw calls, firmware,
certificates, tariffs, API keys and the audit trail. ``partner`` (a roaming partner,
an app of a third party) reads only what is meant for partners: sessions, CDRs,
tariffs and stations' public data. A route declares the lowest level that may call
it; ``partner`` as a level means "partners and every internal role".
"""

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    PARTNER = "partner"


# The access levels each role reaches.
GRANTS: dict[Role, frozenset[Role]] = {
    Role.PARTNER: frozenset({Role.PARTNER}),
    Role.VIEWER: frozenset({Role.PARTNER, Role.VIEWER}),
    Role.OPERATOR: frozenset({Role.PARTNER, Role.VIEWER, Role.OPERATOR}),
    Role.ADMIN: frozenset({Role.PARTNER, Role.VIEWER, Role.OPERATOR, Role.ADMIN}),
}


def reaches(roles: frozenset[Role], level: Role) -> bool:
    """Whether a caller holding ``roles`` may call a route of access ``level``."""
    return any(level in GRANTS[role] for role in roles)
