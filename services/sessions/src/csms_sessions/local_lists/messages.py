"""SendLocalList payloads per OCPP version (1.6 §6.48 AuthorizationData; 2.0.1 D01/D02)."""

import logging
from collections.abc import Sequence
from typing import Any

from csms_ocpp import OcppVersion
from csms_sessions.local_lists.models import LocalListEntry
from csms_sessions.tokens.models import ID_TAG, TOKEN_TYPES_V21, TOKEN_TYPES_V201, TokenStatus
from csms_sessions.tokens.service import Authorization, id_tag_info, id_token_info

logger = logging.getLogger(__name__)

# A 1.6 idTag is an RFID card's UID in practice; a 2.x list needs a type for it.
ID_TAG_AS_2X_TYPE = "ISO14443"
ID_TAG_MAX_LENGTH = 20  # OCPP 1.6 IdToken is CiString20Type
TOKEN_MAX_LENGTH = 36  # OCPP 2.0.1 IdTokenType.idToken is string(36)


def sendable(entry: LocalListEntry, version: OcppVersion) -> bool:
    """Whether the version can carry the entry (token length and type)."""
    if not version.is_2x:
        return len(entry.id_token) <= ID_TAG_MAX_LENGTH
    types = TOKEN_TYPES_V201 if version is OcppVersion.V201 else TOKEN_TYPES_V21
    fits = len(entry.id_token) <= TOKEN_MAX_LENGTH or version is OcppVersion.V21
    return fits and (entry.type in types or entry.type == ID_TAG)


def select_sendable(
    entries: Sequence[LocalListEntry], version: OcppVersion
) -> list[LocalListEntry]:
    """The entries the station can hold; a 1.6 list names each idTag once."""
    chosen: dict[str, LocalListEntry] = {}
    for entry in entries:
        key = entry.id_token if not version.is_2x else f"{entry.id_token}\0{entry.type}"
        if not sendable(entry, version):
            logger.warning(
                "%s cannot hold %s of type %s", version.number, entry.id_token, entry.type
            )
        elif key not in chosen or chosen[key].removed:
            chosen[key] = entry
    return list(chosen.values())


def authorization_data(entry: LocalListEntry, version: OcppVersion) -> dict[str, Any]:
    """One list item; without its info it removes the token (a Differential update)."""
    decision = Authorization(
        TokenStatus(entry.status), entry.expiry_date, entry.group_id, tuple(entry.evse_ids or ())
    )
    if not version.is_2x:
        item: dict[str, Any] = {"idTag": entry.id_token}
        if not entry.removed:
            item["idTagInfo"] = id_tag_info(decision)
        return item
    token_type = ID_TAG_AS_2X_TYPE if entry.type == ID_TAG else entry.type
    item = {"idToken": {"idToken": entry.id_token, "type": token_type}}
    if not entry.removed:
        item["idTokenInfo"] = id_token_info(decision)
    return item


def send_local_list(
    version: OcppVersion,
    list_version: int,
    update_type: str,
    entries: Sequence[LocalListEntry],
) -> dict[str, Any]:
    """A SendLocalList request: ``update_type`` Full or Differential."""
    items = [authorization_data(entry, version) for entry in entries]
    key = "versionNumber" if version.is_2x else "listVersion"
    payload: dict[str, Any] = {key: list_version, "updateType": update_type}
    if items or not version.is_2x:  # 2.x: an empty list is left out (minItems 1)
        payload["localAuthorizationList"] = items
    return payload
