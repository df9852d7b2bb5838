"""Which URLs a station may make the CSMS fetch (an OCSP responder, a CRL).

A station names the responder in GetCertificateStatus, Authorize and
GetCertificateChainStatus; without a check, a compromised station could make the
CSMS send requests into its own network (server-side request forgery). Only http
and https are fetched, and, unless the operator allows it, only from public
addresses: loopback, private, link-local and reserved ones are refused.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class AddressRefused(ValueError):
    """The URL is not one the CSMS fetches for a station."""


async def check_url(url: str, *, allow_private: bool) -> None:
    """Return if ``url`` may be fetched; AddressRefused with the reason otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused(f"not an http(s) URL: {url[:100]}")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise AddressRefused(f"bad port in {url[:100]}") from exc
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise AddressRefused(f"{parts.hostname} does not resolve") from exc
    for *_, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global:
            raise AddressRefused(f"{parts.hostname} is a non-public address ({address})")
