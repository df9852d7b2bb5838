"""What ``csms up`` says once it is up: where everything lives and how to get in.

On a terminal a short block of text; in JSON-lines mode one ``csms is up`` record
with the same facts as fields, so a log pipeline can read them too.
"""

import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url

logger = logging.getLogger("csms_cli")

_ALL_INTERFACES = {"0.0.0.0", "::", ""}
_POLICY_WORDS = {"accept": "accepted", "pending": "kept pending", "reject": "rejected"}


@dataclass(frozen=True)
class StartupInfo:
    """Where the embedded CSMS serves what."""

    ocpp_url: str
    rest_url: str
    docs_url: str
    openapi_url: str
    data: str
    auth: str
    unknown_stations: str
    demo_stations: int
    listening_on: str

    def text(self) -> str:
        """The banner for a terminal."""
        lines = [
            "",
            "CSMS is up: every component in this process (embedded mode, for trying it out)",
            f"  OCPP   {self.ocpp_url}   (1.6, 2.0.1, 2.1; unknown stations are "
            f"{_POLICY_WORDS.get(self.unknown_stations, self.unknown_stations)})",
            f"  REST   {self.rest_url}",
            f"  Docs   {self.docs_url}   (OpenAPI: {self.openapi_url})",
            f"  Data   {self.data}",
            f"  Auth   {self.auth}",
        ]
        if self.demo_stations:
            lines.append(f"  Demo   {self.demo_stations} virtual stations (DEMO00001...), time x60")
        if self.listening_on in _ALL_INTERFACES:
            lines.append("  Note   listening on every interface")
        lines += ["  Stop   Ctrl-C", ""]
        return "\n".join(lines) + "\n"


def auth_hint(admin_key_file: Path) -> str:
    """How to authenticate against this CSMS (REST and stations)."""
    return (
        f'REST: -H "Authorization: Bearer $(cat {admin_key_file})" (an admin key; '
        "`csms api-keys` for more); a station connects without a password until one is "
        "set with PUT /api/v1/stations/{id}"
    )


def startup_info(
    *,
    host: str,
    ocpp_port: int,
    api_port: int,
    tls: bool,
    database_url: str,
    unknown_stations: str,
    demo_stations: int,
    admin_key_file: Path | None = None,
) -> StartupInfo:
    reachable = "localhost" if host in _ALL_INTERFACES else host
    if ":" in reachable:
        reachable = f"[{reachable}]"  # an IPv6 literal in a URL
    api = f"http://{reachable}:{api_port}"
    database = make_url(database_url).database or ""
    data = Path(database).resolve() if database and database != ":memory:" else None
    return StartupInfo(
        ocpp_url=f"{'wss' if tls else 'ws'}://{reachable}:{ocpp_port}/ocpp/{{station_id}}",
        rest_url=f"{api}/api/v1",
        docs_url=f"{api}/docs",
        openapi_url=f"{api}/openapi.json",
        data=f"{data.parent} (SQLite {data.name})" if data else database_url,
        auth=auth_hint(admin_key_file or (data.parent if data else Path.cwd()) / "admin.key"),
        unknown_stations=unknown_stations,
        demo_stations=demo_stations,
        listening_on=host,
    )


def announce(info: StartupInfo, *, json_lines: bool, stream: TextIO | None = None) -> None:
    """Say that the CSMS is up: the banner on a terminal, one record in JSON-lines mode."""
    if json_lines:
        logger.info("csms is up", extra=asdict(info))
        return
    out = stream or sys.stderr
    out.write(info.text())
    out.flush()
