"""Station identity as it arrives in the WebSocket URL.

OCPP 2.0.1 Part 4 §3.1.1: the identity is the last path segment, percent-encoded,
at most 48 characters; it is also the Basic-auth username (Part 2 A00).
We accept the characters of the spec's identifierString (letters, digits and
``*-_=:+|@.``), which keeps ids safe in URLs, Redis keys and log lines.
"""

import re
from urllib.parse import unquote

MAX_STATION_ID_LENGTH = 48
_IDENTIFIER = re.compile(r"[A-Za-z0-9*\-_=:+|@.]+")


class InvalidStationId(ValueError):
    """The station id in the URL is too long, empty or has unsafe characters."""


def parse_station_id(path_segment: str) -> str:
    """Decode and check the station id from the last segment of the URL path."""
    try:
        station_id = unquote(path_segment, errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidStationId("station id is not percent-encoded UTF-8") from exc
    if not station_id:
        raise InvalidStationId("station id is empty")
    if len(station_id) > MAX_STATION_ID_LENGTH:
        raise InvalidStationId(
            f"station id is {len(station_id)} characters; at most {MAX_STATION_ID_LENGTH} allowed"
        )
    if not _IDENTIFIER.fullmatch(station_id):
        raise InvalidStationId(
            "station id may contain only letters, digits and the characters *-_=:+|@."
        )
    return station_id
