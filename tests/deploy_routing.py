"""The files generated from the REST routing table, and the command that writes them.

``src/csms_cli/routing.py`` is the routing table; from it come the compose proxy's
``deploy/nginx/compose.conf``, the Kubernetes proxy's ``deploy/k8s/api-proxy.conf``
and the merged ``docs/openapi.json``. The upstream addresses are read from
``docker-compose.yml`` (the replicas that run each service) and from the Kubernetes
Services. Tests compare the files with what this module renders; after changing
a route or a prefix, write them again with

    uv run python -m tests.deploy_routing
"""

from pathlib import Path
from typing import Any

import yaml

from csms_cli.nginx import render_nginx
from csms_cli.openapi import dumps, merged_openapi
from csms_cli.routing import API_SERVICES, RouteTable, route_table

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
K8S = REPO / "deploy" / "k8s"
COMPOSE_PROXY_CONF = REPO / "deploy" / "nginx" / "compose.conf"
K8S_PROXY_CONF = K8S / "api-proxy.conf"
OPENAPI_FILE = REPO / "docs" / "openapi.json"
REGENERATE = "uv run python -m tests.deploy_routing"
HEADER = (
    "Generated from the REST routing table (src/csms_cli/routing.py): do not edit.\n"
    f'Regenerate with `{REGENERATE}`; docs/operators.md, "One REST base URL".\n'
)


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", [])
    return str(command.split()[0] if isinstance(command, str) else (command or [""])[0])


def compose_upstreams(table: RouteTable) -> dict[str, list[str]]:
    """Each REST service's replicas in docker-compose.yml, as ``name:container-port``."""
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    names = {service.name for service in table.services}
    upstreams: dict[str, list[str]] = {}
    for name, service in compose["services"].items():
        if "build" in service and _command(service) in names:
            (port_spec,) = service["ports"]
            upstreams.setdefault(_command(service), []).append(
                f"{name}:{str(port_spec).split(':')[-1]}"
            )
    return upstreams


def k8s_upstreams(table: RouteTable) -> dict[str, list[str]]:
    """Each REST service's Kubernetes Service ``csms-NAME``, as ``csms-NAME:port``."""
    wanted = {f"csms-{service.name}": service.name for service in table.services}
    upstreams: dict[str, list[str]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for body in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not isinstance(body, dict) or body.get("kind") != "Service":
                continue
            name = body["metadata"]["name"]
            if name in wanted:
                (port,) = (p for p in body["spec"]["ports"] if p.get("name") == "http")
                upstreams[wanted[name]] = [f"{name}:{port['port']}"]
    return upstreams


def expected_files() -> dict[Path, str]:
    """Every generated file and the content it should have now."""
    table = route_table()
    return {
        COMPOSE_PROXY_CONF: render_nginx(table, compose_upstreams(table), header=HEADER),
        K8S_PROXY_CONF: render_nginx(table, k8s_upstreams(table), header=HEADER),
        OPENAPI_FILE: dumps(merged_openapi(API_SERVICES)),
    }


def main() -> None:
    for path, content in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
