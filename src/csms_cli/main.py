"""``csms``: run the CSMS.

``csms up`` runs every component in one process on the embedded default
(in-process bus and router, SQLite). ``csms gateway``, ``csms sessions``,
``csms smartcharging``, ``csms security``, ``csms firmware`` and ``csms billing`` run one
component each in the distributed mode, configured by environment variables
(CSMS_KAFKA_BOOTSTRAP, CSMS_REDIS_URL, CSMS_DATABASE_URL, ...).
"""

import asyncio
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from csms_cli import api_keys

# `csms up --demo` without a number: a small fleet a laptop runs easily.
DEFAULT_DEMO_STATIONS = 10


class BootPolicy(StrEnum):
    ACCEPT = "accept"
    PENDING = "pending"
    REJECT = "reject"


app = typer.Typer(
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(api_keys.app, name="api-keys")


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    ocpp_port: Annotated[
        int, typer.Option(help="OCPP WebSocket port (ws://HOST:PORT/ocpp/{id})")
    ] = 9000,
    api_port: Annotated[
        int, typer.Option(help="REST port (http://HOST:PORT/api/v1, /docs)")
    ] = 8000,
    data_dir: Annotated[Path, typer.Option(help="Where the SQLite files are kept")] = Path(
        "csms-data"
    ),
    unknown_stations: Annotated[
        BootPolicy, typer.Option(help="How to answer the boot of a station nobody registered")
    ] = BootPolicy.ACCEPT,
    demo: Annotated[
        int,
        typer.Option(
            help=f"Also run virtual stations against it: --demo alone runs "
            f"{DEFAULT_DEMO_STATIONS}, --demo N runs N"
        ),
    ] = 0,
) -> None:
    """Run every component in one process: in-process bus and router, SQLite. For trying it out.

    The first start creates an admin API key in DATA_DIR/admin.key (mode 0600).
    """
    from csms_cli.embedded import run_embedded

    data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(
        run_embedded(
            host=host,
            ocpp_port=ocpp_port,
            api_port=api_port,
            database_url=f"sqlite+aiosqlite:///{data_dir.resolve() / 'csms.db'}",
            admin_key_file=data_dir / api_keys.ADMIN_KEY_FILE,
            unknown_station_policy=unknown_stations.value,
            demo_stations=demo,
        )
    )


@app.command()
def gateway() -> None:
    """Run one OCPP gateway (distributed mode).

    Reads CSMS_GATEWAY_ID (unique per replica), CSMS_OCPP_HOST, CSMS_OCPP_PORT,
    CSMS_KAFKA_BOOTSTRAP, CSMS_REDIS_URL and CSMS_DATABASE_URL (station passwords); on
    uvloop unless CSMS_EVENT_LOOP=asyncio.
    """
    from csms_cli.replicas import gateway as replica
    from csms_core import loop

    loop.run(replica.run())


@app.command()
def sessions(
    control_fd: Annotated[
        int | None,
        typer.Option(hidden=True, help="Run only the consumer, for the API process on this fd"),
    ] = None,
) -> None:
    """Run one sessions service replica with its REST API (distributed mode).

    Reads CSMS_KAFKA_BOOTSTRAP, CSMS_REDIS_URL, CSMS_DATABASE_URL, CSMS_API_HOST,
    CSMS_API_PORT, CSMS_UNKNOWN_STATION_POLICY (accept | pending | reject; default reject)
    and CSMS_SESSIONS_PROCESSES (2: the consumer in a child process; default 1). Runs on
    uvloop unless CSMS_EVENT_LOOP=asyncio.
    """
    from csms_cli.replicas import sessions as replica
    from csms_core import loop

    if control_fd is not None:
        loop.run(replica.run_consumer(control_fd))
        return
    if loop.run(replica.run()):
        raise typer.Exit(1)


@app.command()
def smartcharging() -> None:
    """Run one smart charging service replica with its REST API (distributed mode).

    Reads CSMS_KAFKA_BOOTSTRAP, CSMS_REDIS_URL, CSMS_DATABASE_URL, CSMS_API_HOST,
    CSMS_SMARTCHARGING_API_PORT (default 8001), CSMS_ALLOCATION_TICK_S (default 5)
    and CSMS_SMARTCHARGING_CONSUMER_GROUP (default csms-smartcharging).
    """
    from csms_cli.replicas import smartcharging as replica

    asyncio.run(replica.run())


@app.command()
def security() -> None:
    """Run one security service replica with its REST API (distributed mode).

    It holds the station CA: CSMS_SECURITY_CA_CERT_FILE and CSMS_SECURITY_CA_KEY_FILE (the
    operator's), or one created in CSMS_SECURITY_CA_DIR on first start; CSMS_API_HOST,
    CSMS_SECURITY_API_PORT (default 8002), CSMS_SECURITY_ORGANIZATION
    (docs/station-security.md).
    """
    from csms_cli.replicas import security as replica

    asyncio.run(replica.run())


@app.command("create-ca")
def create_ca(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write ca.pem and ca-key.pem")],
    organization: Annotated[
        str, typer.Option(help="The O of the CA and of every station certificate")
    ],
    days: Annotated[int, typer.Option(help="How long the CA is valid")] = 3650,
) -> None:
    """Create a station CA (ca.pem, and ca-key.pem mode 0600) for CSMS_SECURITY_CA_*_FILE."""
    from datetime import timedelta

    from csms_security.authority.ca import CERT_FILE, KEY_FILE, load_or_create_authority

    if (directory / KEY_FILE).exists():
        raise typer.BadParameter(f"{directory / KEY_FILE} exists already", param_hint="--dir")
    authority = load_or_create_authority(directory, organization, timedelta(days=days))
    typer.echo(f"{directory / CERT_FILE}: {authority.certificate.subject.rfc4514_string()}")
    typer.echo(f"{directory / KEY_FILE}: the private key (keep it secret, back it up)")


@app.command()
def firmware() -> None:
    """Run one firmware and diagnostics service replica with its REST API (distributed mode).

    Reads CSMS_KAFKA_BOOTSTRAP, CSMS_REDIS_URL, CSMS_DATABASE_URL, CSMS_API_HOST,
    CSMS_FIRMWARE_API_PORT (default 8003), CSMS_FIRMWARE_PUBLIC_URL (the base URL stations
    download images from and upload logs to), CSMS_FIRMWARE_STORE_DIR (images and logs;
    shared by the replicas), CSMS_FIRMWARE_FTP_PORT (0 = no FTP) and
    CSMS_FIRMWARE_CONSUMER_GROUP (default csms-firmware).
    """
    from csms_cli.replicas import firmware as replica

    asyncio.run(replica.run())


@app.command()
def billing() -> None:
    """Run one billing service replica with its REST API (distributed mode).

    Reads CSMS_KAFKA_BOOTSTRAP, CSMS_REDIS_URL, CSMS_DATABASE_URL, CSMS_API_HOST,
    CSMS_BILLING_API_PORT (default 8004), CSMS_BILLING_CONSUMER_GROUP (default csms-billing),
    CSMS_BILLING_COUNTRY_CODE / CSMS_BILLING_PARTY_ID (the CPO in OCPI terms) and
    CSMS_BILLING_TIME_ZONE (of tariffs that name none); docs/billing.md.
    """
    from csms_cli.replicas import billing as replica

    asyncio.run(replica.run())


@app.command()
def simulate(
    url: Annotated[str, typer.Option(help="CSMS base URL; a station connects to URL/{id}")] = (
        "ws://127.0.0.1:9000/ocpp"
    ),
    stations: Annotated[int, typer.Option(help="How many virtual stations")] = 10,
    versions: Annotated[
        str, typer.Option(help="OCPP version mix, e.g. 1.6=0.3,2.0.1=0.4,2.1=0.3")
    ] = "1.6=0.3,2.0.1=0.4,2.1=0.3",
    evses: Annotated[int, typer.Option(help="EVSEs (connectors) per station")] = 2,
    duration: Annotated[float, typer.Option(help="Seconds to run; 0 = until Ctrl-C")] = 0.0,
    speed: Annotated[float, typer.Option(help="Time acceleration (60 = an hour a minute)")] = 1.0,
    report: Annotated[Path | None, typer.Option(help="Write the run's JSON report here")] = None,
    id_prefix: Annotated[str, typer.Option(help="Station id prefix")] = "SIM",
    password: Annotated[
        str | None, typer.Option(help="Basic-auth password (security profile 1)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same fleet)")] = 0,
    ramp: Annotated[float, typer.Option(help="New connections per second")] = 100.0,
    install_failure_rate: Annotated[
        float, typer.Option(help="Share of stations whose firmware installs fail (0..1)")
    ] = 0.0,
    updated_firmware: Annotated[
        str, typer.Option(help="The version a station reports after a firmware install")
    ] = "1.0.1",
) -> None:
    """Run a fleet of virtual OCPP 1.6 / 2.0.1 / 2.1 stations against a CSMS."""
    from csms_cli.runtime import stop_on_signals
    from csms_simulator import SimulationConfig, parse_version_mix, run_fleet

    config = SimulationConfig(
        url=url,
        count=stations,
        version_mix=parse_version_mix(versions),
        evses_per_station=evses,
        duration_s=duration,
        speed=speed,
        id_prefix=id_prefix,
        password=password,
        seed=seed,
        ramp_per_s=ramp,
        install_failure_rate=install_failure_rate,
        updated_firmware_version=updated_firmware,
    )

    async def run() -> str:
        stopping = asyncio.Event()
        stop_on_signals(stopping)
        result = await run_fleet(config, stopping=stopping)
        if report is not None:
            result.write(report)
        return result.to_json()

    typer.echo(asyncio.run(run()))


@app.command()
def routes(
    nginx: Annotated[
        bool, typer.Option("--nginx", help="Print an nginx configuration instead of the table")
    ] = False,
    upstream: Annotated[
        list[str] | None,
        typer.Option(help="With --nginx: SERVICE=HOST:PORT of one replica (repeat per replica)"),
    ] = None,
) -> None:
    """Print the REST routing table: which service serves which /api/v1 prefix."""
    from csms_cli.nginx import render_nginx
    from csms_cli.routing import route_table

    table = route_table()
    if not nginx:
        for route in table.in_match_order():
            typer.echo(f"{route.prefix:<56} {route.service}")
        return
    replicas: dict[str, list[str]] = {}
    for spec in upstream or []:
        service, separator, address = spec.partition("=")
        if not separator or not address:
            raise typer.BadParameter(
                f"{spec!r}: expected SERVICE=HOST:PORT", param_hint="--upstream"
            )
        replicas.setdefault(service, []).append(address)
    try:
        typer.echo(render_nginx(table, replicas), nl=False)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--upstream") from error


@app.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option(help="Write the document here instead of printing it")
    ] = None,
) -> None:
    """Print the OpenAPI document of the whole REST API (every service's routes, merged)."""
    from csms_cli.openapi import dumps, merged_openapi
    from csms_cli.routing import API_SERVICES

    document = dumps(merged_openapi(API_SERVICES))
    if output is None:
        typer.echo(document, nl=False)
    else:
        output.write_text(document, encoding="utf-8")


def expand_bare_demo(args: list[str]) -> list[str]:
    """``csms up --demo`` (last, or followed by an option) means ``--demo DEFAULT``.

    typer's options take a value or none, never an optional one, so the bare flag is
    completed here before parsing.
    """
    words = [word for word in args if not word.startswith("-")]
    if not words or words[0] != "up":
        return args
    expanded = list(args)
    for index, word in enumerate(args):
        # A word that is not an option stays its value: `--demo ten` is refused as such.
        if word == "--demo" and (index + 1 == len(args) or args[index + 1].startswith("-")):
            expanded[index] = f"--demo={DEFAULT_DEMO_STATIONS}"
    return expanded


def main() -> None:
    app(args=expand_bare_demo(sys.argv[1:]))
