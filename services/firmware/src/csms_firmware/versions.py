"""Ordering firmware versions: ``1.10.0`` is newer than ``1.9.2``, ``2.0`` than ``2.0-rc1``."""

import re

_PART = re.compile(r"\d+|[A-Za-z]+")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key: numbers compare as numbers; a release sorts after its pre-releases."""
    parts: list[tuple[int, int | str]] = []
    for token in _PART.findall(version):
        parts.append((1, int(token)) if token.isdigit() else (0, token.lower()))
    # "2.0" > "2.0-rc1": a missing trailing part counts as the end of a release.
    parts.append((2, 0))
    return tuple(parts)
