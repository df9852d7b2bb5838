"""One REST base URL: the routing table against every service's OpenAPI document.

No sockets: the services' FastAPI apps are built with a placeholder service and
only their routes are read. ``tests/test_api_proxy.py`` runs the real nginx.
"""

import functools
import itertools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from typer.testing import CliRunner

from csms_cli.main import app as csms_app
from csms_cli.nginx import render_nginx
from csms_cli.openapi import SERVICE_KEY, OpenApiConflict, is_public, merged_openapi
from csms_cli.routing import (
    API_SERVICES,
    ApiService,
    PublicPath,
    RouteTable,
    RoutingError,
    is_param,
    route_table,
    segments,
)
from tests.deploy_routing import REGENERATE, expected_files

REPO = Path(__file__).resolve().parent.parent
TABLE = route_table()
WITNESS = "W1tness"  # stands for a path parameter's value
_METHODS = {"get", "put", "post", "delete", "patch"}


@functools.cache
def _own_openapi(service: ApiService) -> dict[str, Any]:
    document: dict[str, Any] = service.app().openapi()
    return document


@functools.cache
def _merged() -> dict[str, Any]:
    return merged_openapi(API_SERVICES)


# Each process's own, not the API: the proxy does not route them.
PROCESS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _api_paths(service: ApiService) -> list[str]:
    """The paths the service serves through the proxy: under /api and its public ones."""
    return [path for path in _own_openapi(service)["paths"] if path not in PROCESS_PATHS]


def _packages_with_rest_routes() -> set[str]:
    """Every service package under services/ whose code builds FastAPI routes."""
    found: set[str] = set()
    for package in REPO.glob("services/*/src/*"):
        if package.is_dir() and any(
            re.search(r"\b(APIRouter|FastAPI)\(", path.read_text(encoding="utf-8"))
            for path in package.rglob("*.py")
        ):
            found.add(package.name)
    return found


def _witnesses(template: str) -> list[str]:
    """Concrete paths of a template: each parameter as a plain value and as every literal
    some prefix of the table has at that position (a station named "sites", say)."""
    choices: list[list[str]] = []
    for position, segment in enumerate(segments(template)):
        if not is_param(segment):
            choices.append([segment])
            continue
        literals = {
            route.segments[position]
            for route in TABLE.routes
            if len(route.segments) > position and not is_param(route.segments[position])
        }
        choices.append([WITNESS, *sorted(literals)])
    return ["/" + "/".join(parts) for parts in itertools.product(*choices)]


def _could_match_the_same_path(one: str, other: str) -> bool:
    mine, theirs = segments(one), segments(other)
    return len(mine) == len(theirs) and all(
        is_param(a) or is_param(b) or a == b for a, b in zip(mine, theirs, strict=True)
    )


def test_every_service_with_rest_routes_is_in_the_routing_table() -> None:
    """A service added later under services/ is checked without anyone listing it."""
    listed = {service.create_app.__module__.split(".")[0] for service in API_SERVICES}
    discovered = _packages_with_rest_routes()
    assert {"csms_sessions", "csms_smartcharging"} <= discovered
    missing = sorted(discovered - listed)
    assert not missing, f"add {missing} to API_SERVICES in src/csms_cli/routing.py"


def test_every_route_is_served_by_the_owner_of_its_path() -> None:
    for service in API_SERVICES:
        paths = _api_paths(service)
        assert paths, f"{service.name} serves no /api route"
        for template in paths:
            for path in _witnesses(template):
                owner = TABLE.owner(path)
                assert owner == service.name, (
                    f"{template} of {service.name}: {path} would be routed to {owner}; add a "
                    f"prefix for it to {service.name} in src/csms_cli/routing.py"
                )


def test_no_two_services_serve_overlapping_paths() -> None:
    served = [(service.name, path) for service in API_SERVICES for path in _api_paths(service)]
    for (one, first), (other, second) in itertools.combinations(served, 2):
        if one != other:
            assert not _could_match_the_same_path(first, second), (
                f"{first} ({one}) and {second} ({other}) match the same requests"
            )


def test_every_prefix_owns_a_route_of_its_service() -> None:
    """No dead entries: a prefix nobody serves would route to a 404."""
    for service in API_SERVICES:
        owned = [
            path
            for template in _api_paths(service)
            for path in _witnesses(template)[:1]
            if any(route.matches(path) for route in TABLE.routes if route.service == service.name)
        ]
        for prefix in service.prefixes:
            route = next(r for r in TABLE.routes if r.prefix == prefix)
            assert any(route.matches(path) for path in owned), f"{prefix}: no route of its own"


def test_the_longest_prefix_owns_a_path() -> None:
    assert TABLE.owner("/api/v1/stations") == "sessions"
    assert TABLE.owner("/api/v1/stations/CP-1") == "sessions"
    assert TABLE.owner("/api/v1/stations/CP-1/configuration") == "sessions"
    assert TABLE.owner("/api/v1/stations/CP-1/charging-profiles") == "smartcharging"
    assert TABLE.owner("/api/v1/stations/CP-1/charging-profiles/report") == "smartcharging"
    assert TABLE.owner("/api/v1/sites/S-1/groups/G") == "smartcharging"
    assert TABLE.owner("/api/v1/stations/CP-1/certificates/installed") == "security"
    assert TABLE.owner("/api/v1/stations/CP-1/security-profile/upgrades") == "security"
    assert TABLE.owner("/api/v1/certificates/ca") == "security"
    assert TABLE.owner("/api/v1/stationsX") is None
    assert TABLE.owner("/api/v1/nowhere") is None
    assert TABLE.owner("/api/v2/stations") is None
    assert TABLE.owner("/payments/webhook") == "billing"
    assert TABLE.owner("/receipts/R-1") == "billing"
    assert TABLE.owner("/firmware/files/T/image.bin") == "firmware"
    assert TABLE.owner("/firmware/uploads/T") == "firmware"
    assert TABLE.owner("/firmware") is None
    assert TABLE.owner("/payments") is None


def test_every_path_a_service_serves_outside_the_api_is_public_in_the_table() -> None:
    """What a service serves outside /api/v1 (bar each process's health and metrics) is
    reachable through the one proxy URL: a new bearer-less route needs its prefix."""
    for service in API_SERVICES:
        for path in _own_openapi(service)["paths"]:
            if path.startswith("/api/") or path in PROCESS_PATHS:
                continue
            routes = [route for route in TABLE.public if route.matches(_concrete(path))]
            assert [route.service for route in routes] == [service.name], (
                f"{path} of {service.name}: add a PublicPath for it in src/csms_cli/routing.py"
            )


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", WITNESS, template)


def _service(name: str, *prefixes: str, public: tuple[str, ...] = ()) -> ApiService:
    paths = tuple(PublicPath(prefix) for prefix in public)
    return ApiService(name, lambda _: FastAPI(), prefixes, public=paths)


@pytest.mark.parametrize(
    ("services", "error"),
    [
        ([_service("a", "/stations")], "not under /api/v1/"),
        ([_service("a", "/api/v1/Sta tions")], "bad segment"),
        ([_service("a", "/api/v1/stations/{station_id}")], "ends with a parameter"),
        ([_service("a", "/api/v1/x"), _service("a", "/api/v1/y")], "listed twice"),
        ([_service("a", "/api/v1/x"), _service("b", "/api/v1/x")], "same depth"),
        (
            [_service("a", "/api/v1/s/{id}/p"), _service("b", "/api/v1/s/main/p")],
            "same depth",
        ),
        ([_service("a", "/api/v1/x", public=("/api/v1/y",))], "under a reserved one"),
        ([_service("a", "/api/v1/x", public=("/healthz",))], "under a reserved one"),
        ([_service("a", "/api/v1/x", public=("/openapi.json",))], "under a reserved one"),
        ([_service("a", "/api/v1/x", public=("receipts",))], "not an absolute path"),
        ([_service("a", "/api/v1/x", public=("/r/{id}/x",))], "has no parameter"),
        (
            [
                _service("a", "/api/v1/x", public=("/r",)),
                _service("b", "/api/v1/y", public=("/r",)),
            ],
            "same depth",
        ),
    ],
)
def test_a_malformed_or_ambiguous_table_is_refused(services: list[ApiService], error: str) -> None:
    with pytest.raises(RoutingError, match=re.escape(error)):
        RouteTable(services)


def test_the_generated_files_are_current() -> None:
    stale = [
        str(path.relative_to(REPO))
        for path, content in expected_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]
    assert not stale, f"{stale} are out of date: run `{REGENERATE}`"


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return own + [ref for item in value.values() for ref in _refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []


def test_the_merged_openapi_holds_every_operation_of_every_service() -> None:
    merged = _merged()
    for service in API_SERVICES:
        own = _own_openapi(service)["paths"]
        for path in _api_paths(service):
            methods = {method for method in own[path] if method in _METHODS}
            assert methods == {m for m in merged["paths"][path] if m in _METHODS}, path
            for method in methods:
                assert merged["paths"][path][method][SERVICE_KEY] == service.name
                assert (
                    merged["paths"][path][method]["operationId"]
                    == (own[path][method]["operationId"])
                )
    public = [route.prefix for route in TABLE.public]
    outside = [path for path in merged["paths"] if not path.startswith("/api/v1/")]
    assert outside, "the public paths are documented too"
    assert not [path for path in outside if not is_public(path, tuple(public))]
    schemas = merged["components"]["schemas"]
    for ref in _refs(merged):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_schemas_two_services_define_differently_are_renamed_after_them() -> None:
    merged = _merged()
    schemas = merged["components"]["schemas"]
    assert "StationOut" not in schemas
    assert "registered" in schemas["SessionsStationOut"]["properties"]
    assert "site_id" in schemas["SmartchargingStationOut"]["properties"]
    assert "ProblemDetail" in schemas  # the same in both: kept once, under its name
    page = schemas["Page_StationOut_"]["properties"]["items"]["items"]
    assert page == {"$ref": "#/components/schemas/SessionsStationOut"}
    site_stations = merged["paths"]["/api/v1/sites/{site_id}/stations/{station_id}"]["put"]
    assert "SmartchargingStationOut" in str(site_stations["responses"]["200"])


def _app_with(path: str, name: str) -> FastAPI:
    app = FastAPI()
    router = APIRouter()

    @router.get(path, operation_id=name)
    async def endpoint() -> dict[str, str]:
        return {}

    app.include_router(router)
    return app


def test_two_services_documenting_one_path_is_a_conflict() -> None:
    one = ApiService("one", lambda _: _app_with("/api/v1/things", "a"), ("/api/v1/things",))
    two = ApiService("two", lambda _: _app_with("/api/v1/things", "b"), ("/api/v1/other",))
    with pytest.raises(OpenApiConflict, match="/api/v1/things is documented by one and two"):
        merged_openapi([one, two])
    three = ApiService("three", lambda _: _app_with("/api/v1/more", "a"), ("/api/v1/more",))
    with pytest.raises(OpenApiConflict, match="operationId a"):
        merged_openapi([one, three])


def _nginx_first_match(config: str, path: str) -> str | None:
    """The upstream of the first regex location that matches, as nginx picks it."""
    for pattern, upstream in re.findall(
        r'location ~ "([^"]+)" \{ [^}]*?proxy_pass http://(\w+);', config
    ):
        if re.search(pattern, path):
            return str(upstream).removeprefix("csms_")
    return None


def test_the_nginx_locations_route_like_the_table() -> None:
    config = render_nginx(TABLE, {service.name: ["x:1"] for service in API_SERVICES})
    for service in API_SERVICES:
        for template in _api_paths(service):
            for path in _witnesses(template):
                assert _nginx_first_match(config, path) == service.name, path
    assert _nginx_first_match(config, "/api/v1/stationsX") is None
    assert _nginx_first_match(config, "/receiptsX/1") is None
    (uploads,) = [line for line in config.splitlines() if "^/firmware/uploads" in line]
    assert "client_max_body_size 0; proxy_request_buffering off;" in uploads
    (receipts,) = [line for line in config.splitlines() if "^/receipts" in line]
    assert "client_max_body_size" not in receipts  # the proxy's 1 MB


def test_rendering_needs_an_upstream_for_every_service() -> None:
    missing = "no upstream address for billing, firmware, security, smartcharging"
    with pytest.raises(ValueError, match=missing):
        render_nginx(TABLE, {"sessions": ["sessions:8000"]})


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    assert found, "nginx is not installed: scripts/test.sh installs it (apt-get nginx-light)"
    return found


@pytest.mark.parametrize("generated", ["deploy/nginx/compose.conf", "deploy/k8s/api-proxy.conf"])
def test_nginx_accepts_the_generated_configuration(generated: str, tmp_path: Path) -> None:
    """`nginx -t` on the real binary, replica host names pointed at loopback (they only
    resolve inside compose or the cluster)."""
    config = (REPO / generated).read_text(encoding="utf-8")
    config = re.sub(r"server [\w.-]+:(\d+)", r"server 127.0.0.1:\1", config)
    config = config.replace("/tmp/", f"{tmp_path}/")  # noqa: S108 (the config's own paths)
    (tmp_path / "nginx.conf").write_text(config, encoding="utf-8")
    checked = subprocess.run(
        [nginx_binary(), "-e", "stderr", "-t", "-p", str(tmp_path), "-c", "nginx.conf"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_csms_routes_prints_the_table_and_a_proxy_configuration() -> None:
    runner = CliRunner()
    table = runner.invoke(csms_app, ["routes"])
    assert table.exit_code == 0, table.output
    printed = [line.split() for line in table.output.splitlines()]
    assert printed == [[route.prefix, route.service] for route in TABLE.in_match_order()]
    upstreams = [
        "--upstream",
        "sessions=10.0.0.1:8000",
        "--upstream",
        "smartcharging=10.0.0.2:8001",
        "--upstream",
        "security=10.0.0.3:8002",
        "--upstream",
        "firmware=10.0.0.4:8003",
        "--upstream",
        "billing=10.0.0.5:8004",
    ]
    nginx = runner.invoke(csms_app, ["routes", "--nginx", *upstreams])
    assert nginx.exit_code == 0, nginx.output
    assert nginx.output == render_nginx(
        TABLE,
        {
            "sessions": ["10.0.0.1:8000"],
            "smartcharging": ["10.0.0.2:8001"],
            "security": ["10.0.0.3:8002"],
            "firmware": ["10.0.0.4:8003"],
            "billing": ["10.0.0.5:8004"],
        },
    )


@pytest.mark.parametrize(
    ("upstreams", "error"),
    [
        (["--upstream", "sessions"], "expected SERVICE=HOST:PORT"),
        (["--upstream", "sessions=a:1"], "no upstream address for billing"),
    ],
)
def test_csms_routes_refuses_bad_upstreams(upstreams: list[str], error: str) -> None:
    refused = CliRunner().invoke(csms_app, ["routes", "--nginx", *upstreams])
    assert refused.exit_code == 2
    assert error in " ".join(refused.output.split())


def test_csms_openapi_writes_the_published_document(tmp_path: Path) -> None:
    written = tmp_path / "openapi.json"
    result = CliRunner().invoke(csms_app, ["openapi", "--output", str(written)])
    assert result.exit_code == 0, result.output
    published = (REPO / "docs" / "openapi.json").read_text(encoding="utf-8")
    stale = "docs/openapi.json is stale: run `uv run csms openapi --output docs/openapi.json`"
    assert written.read_text(encoding="utf-8") == published, stale
