"""Unguessable per-request URL tokens: stations fetch images and upload logs with them.

Only a token's SHA-256 is stored, so a database dump opens no URL.
"""

import hashlib
import secrets


def new_token() -> tuple[str, str]:
    """(token for the URL, its hash for the database)."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
