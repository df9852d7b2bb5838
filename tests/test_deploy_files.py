"""docker-compose.yml and deploy/Dockerfile, checked as files (no Docker engine needed)."""

import importlib
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

from csms_api.tracing import TraceSampling
from csms_cli.routing import route_table
from csms_core.settings import CommonSettings
from tests.deploy_routing import COMPOSE_PROXY_CONF, OPENAPI_FILE, compose_upstreams

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
SETTINGS_CLASSES = (
    ("csms_gateway.settings", "GatewaySettings"),
    ("csms_sessions.settings", "SessionsSettings"),
    ("csms_smartcharging.settings", "SmartChargingSettings"),
    ("csms_security.settings", "SecuritySettings"),
    ("csms_firmware.settings", "FirmwareSettings"),
    ("csms_billing.settings", "BillingSettings"),
)
# The variable each component's listen port comes from, by `csms` subcommand.
# The most of the traces a deployed component may record (docs/operators.md): 1.0 records a
# trace for every station message, about 50 µs of gateway CPU per CALL at a fleet's rate.
MAX_DEPLOYED_TRACE_SAMPLE_RATIO = 0.05
LISTEN_PORT_VARIABLES = {
    "gateway": ("CSMS_OCPP_HOST", "CSMS_OCPP_PORT"),
    "sessions": ("CSMS_API_HOST", "CSMS_API_PORT"),
    "smartcharging": ("CSMS_API_HOST", "CSMS_SMARTCHARGING_API_PORT"),
    "security": ("CSMS_API_HOST", "CSMS_SECURITY_API_PORT"),
    "firmware": ("CSMS_API_HOST", "CSMS_FIRMWARE_API_PORT"),
    "billing": ("CSMS_API_HOST", "CSMS_BILLING_API_PORT"),
}


def _load_compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return compose


COMPOSE = _load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
CSMS_SERVICES = [name for name, service in SERVICES.items() if "build" in service]


def settings_classes() -> list[type[BaseSettings]]:
    """CommonSettings and the component settings classes that exist."""
    classes: list[type[BaseSettings]] = [CommonSettings]
    for module_name, class_name in SETTINGS_CLASSES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        classes.append(getattr(module, class_name))
    return classes


def _alias_names(alias: str | AliasPath | AliasChoices | None) -> list[str]:
    """The environment names a pydantic alias stands for (the first step of a path)."""
    if alias is None:
        return []
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasPath):
        first = alias.path[0]
        return [first] if isinstance(first, str) else []
    return [name for choice in alias.choices for name in _alias_names(choice)]


def env_names(settings: type[BaseSettings]) -> set[str]:
    """The CSMS_* variables ``settings`` reads.

    pydantic-settings reads a field with an alias (``validation_alias=AliasChoices(
    "CSMS_SMARTCHARGING_API_PORT", "api_port")``) under its alias names, as they are
    (no env prefix), and no longer under prefix + field name.
    """
    return {
        name
        for field_name in settings.model_fields
        for name in field_env_names(settings, field_name)
    }


def field_env_names(settings: type[BaseSettings], field_name: str) -> set[str]:
    """The CSMS_* variables one field of ``settings`` is read from."""
    field = settings.model_fields[field_name]
    aliases = _alias_names(field.validation_alias) or _alias_names(field.alias)
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = aliases if aliases else [f"{prefix}{field_name}"]
    return {name.upper() for name in names if name.upper().startswith("CSMS_")}


def settings_env_names() -> set[str]:
    """Every CSMS_* variable some component reads, from the settings classes that exist."""
    return {name for settings in settings_classes() for name in env_names(settings)}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    return {str(name): str(value) for name, value in environment.items()}


def _depends_on(service: dict[str, Any]) -> list[str]:
    depends_on = service.get("depends_on", [])
    return list(depends_on) if isinstance(depends_on, dict) else depends_on


def _host_ports(service: dict[str, Any]) -> list[str]:
    """The published host ports ("HOST:CONTAINER" or the long syntax)."""
    published: list[str] = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published.append(str(port["published"]))
        else:
            parts = str(port).split(":")
            published.append(parts[-2] if len(parts) > 1 else parts[0])
    return published


def test_every_service_has_an_image_or_a_build() -> None:
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name


def test_every_build_points_to_an_existing_dockerfile() -> None:
    assert CSMS_SERVICES
    for name in CSMS_SERVICES:
        build = SERVICES[name]["build"]
        context = REPO / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = context / (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert dockerfile.is_file(), f"{name}: {dockerfile}"


def test_every_build_target_is_a_stage_of_the_dockerfile() -> None:
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", _dockerfile(), re.MULTILINE | re.I))
    for name in CSMS_SERVICES:
        target = SERVICES[name]["build"].get("target")
        assert target is None or target in stages, f"{name}: no stage {target}"


def test_every_csms_variable_is_a_settings_field() -> None:
    known = settings_env_names()
    for name, service in SERVICES.items():
        unknown = {var for var in _environment(service) if var.startswith("CSMS_")} - known
        assert not unknown, f"{name} sets variables no component reads: {sorted(unknown)}"


def test_the_platform_is_wired_into_every_csms_service() -> None:
    for name in CSMS_SERVICES:
        environment = _environment(SERVICES[name])
        assert environment["CSMS_KAFKA_BOOTSTRAP"] == "kafka:9092", name
        assert environment["CSMS_REDIS_URL"] == "redis://redis:6379/0", name
        assert environment["CSMS_DATABASE_URL"] == (
            "postgresql+asyncpg://csms:csms@postgres:5432/csms"
        ), name
        assert set(_depends_on(SERVICES[name])) >= {"kafka", "redis", "postgres"}, name


def test_gateway_ids_are_unique() -> None:
    ids = [
        _environment(service)["CSMS_GATEWAY_ID"]
        for service in SERVICES.values()
        if "CSMS_GATEWAY_ID" in _environment(service)
    ]
    assert sorted(ids) == ["gw-1", "gw-2"]


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", [])
    return str(command.split()[0] if isinstance(command, str) else command[0])


def test_every_csms_service_runs_a_distributed_component() -> None:
    commands = sorted(_command(SERVICES[name]) for name in CSMS_SERVICES)
    assert commands == sorted(2 * list(LISTEN_PORT_VARIABLES)), commands


def _settings_default(variable: str) -> str:
    for settings in settings_classes():
        for field_name, field in settings.model_fields.items():
            if variable in field_env_names(settings, field_name):
                return str(field.default)
    raise AssertionError(f"no settings field reads {variable}")


def test_every_csms_service_listens_where_it_is_published_and_checked() -> None:
    """The port from the component's own variable is the container port the host
    port maps to and the one its healthcheck asks."""
    for name in CSMS_SERVICES:
        service = SERVICES[name]
        host_variable, port_variable = LISTEN_PORT_VARIABLES[_command(service)]
        environment = _environment(service)
        assert environment.get(host_variable) == "0.0.0.0", f"{name}: {host_variable}"
        port = environment.get(port_variable) or _settings_default(port_variable)
        container_ports = [str(port_spec).split(":")[-1] for port_spec in service["ports"]]
        assert container_ports == [port], f"{name}: listens on {port}, maps {container_ports}"
        check = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/" in check, f"{name}: healthcheck {check}"


def test_every_csms_variable_is_read_by_the_services_own_component() -> None:
    """CSMS_API_PORT on a smart charging replica (it reads CSMS_SMARTCHARGING_API_PORT)
    would be valid for some component, and do nothing."""
    classes = {settings.__name__: settings for settings in settings_classes()}
    component_classes = {
        "gateway": "GatewaySettings",
        "sessions": "SessionsSettings",
        "smartcharging": "SmartChargingSettings",
        "security": "SecuritySettings",
        "firmware": "FirmwareSettings",
        "billing": "BillingSettings",
    }
    for name in CSMS_SERVICES:
        service = SERVICES[name]
        own = env_names(classes[component_classes[_command(service)]])
        ignored = {var for var in _environment(service) if var.startswith("CSMS_")} - own
        assert not ignored, f"{name}: its component ignores {sorted(ignored)}"


def test_the_sample_ratio_is_one_variable_for_messages_and_requests() -> None:
    """The gateway's station messages and the services' REST requests read the same name."""
    assert field_env_names(CommonSettings, "trace_sample_ratio") == {"CSMS_TRACE_SAMPLE_RATIO"}
    assert field_env_names(TraceSampling, "trace_sample_ratio") == {"CSMS_TRACE_SAMPLE_RATIO"}


def test_every_csms_service_records_a_small_share_of_traces() -> None:
    for name in CSMS_SERVICES:
        ratio = _environment(SERVICES[name]).get("CSMS_TRACE_SAMPLE_RATIO")
        assert ratio is not None, f"{name}: records every trace (CSMS_TRACE_SAMPLE_RATIO unset)"
        assert 0 < float(ratio) <= MAX_DEPLOYED_TRACE_SAMPLE_RATIO, f"{name}: ratio {ratio}"


def test_smartcharging_replicas_share_their_own_consumer_group() -> None:
    replicas = [
        _environment(SERVICES[name])
        for name in CSMS_SERVICES
        if _command(SERVICES[name]) == "smartcharging"
    ]
    assert len(replicas) == 2
    groups = {environment.get("CSMS_SMARTCHARGING_CONSUMER_GROUP") for environment in replicas}
    sessions_groups = {
        _environment(SERVICES[name]).get("CSMS_CONSUMER_GROUP", "csms-sessions")
        for name in CSMS_SERVICES
        if _command(SERVICES[name]) == "sessions"
    }
    assert len(groups) == 1 and None not in groups, groups
    assert not groups & sessions_groups, "smart charging must not join the sessions group"


def test_billing_replicas_share_their_own_consumer_group() -> None:
    replicas = [
        _environment(SERVICES[name])
        for name in CSMS_SERVICES
        if _command(SERVICES[name]) == "billing"
    ]
    assert len(replicas) == 2
    groups = {environment.get("CSMS_BILLING_CONSUMER_GROUP") for environment in replicas}
    others = {
        value
        for name in CSMS_SERVICES
        for variable, value in _environment(SERVICES[name]).items()
        if variable.endswith("CONSUMER_GROUP") and variable != "CSMS_BILLING_CONSUMER_GROUP"
    }
    assert len(groups) == 1 and None not in groups, groups
    assert not groups & others, "billing must not join another service's group"


def test_depends_on_targets_exist_and_wait_for_health() -> None:
    for name, service in SERVICES.items():
        depends_on = service.get("depends_on", {})
        for target in _depends_on(service):
            assert target in SERVICES, f"{name} depends on unknown {target}"
            assert "healthcheck" in SERVICES[target], f"{target} has no healthcheck"
            if isinstance(depends_on, dict):
                assert depends_on[target].get("condition") == "service_healthy", name


def test_every_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), name


def test_published_ports_are_unique() -> None:
    published = [port for service in SERVICES.values() for port in _host_ports(service)]
    assert len(published) == len(set(published)), published


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: undeclared volume {source}"


def _dockerfile() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


def _instructions() -> list[list[str]]:
    """The Dockerfile's instructions as words, continuation lines joined, comments dropped."""
    logical = re.sub(r"\\\n", " ", _dockerfile())
    return [
        line.split()
        for line in logical.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _copied_sources() -> list[str]:
    """The build-context paths the Dockerfile copies (not those copied from another stage)."""
    sources: list[str] = []
    for words in _instructions():
        if words[0].upper() != "COPY" or any(word.startswith("--from") for word in words):
            continue
        sources.extend(word for word in words[1:-1] if not word.startswith("--"))
    return sources


def test_dockerfile_copies_only_paths_that_exist() -> None:
    assert _copied_sources()
    for source in _copied_sources():
        assert (REPO / source).exists(), f"COPY {source}: no such path"


def _workspace_members() -> list[Path]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns: list[str] = root["tool"]["uv"]["workspace"]["members"]
    return [path for pattern in patterns for path in REPO.glob(pattern) if path.is_dir()]


def test_dockerfile_copies_every_workspace_member() -> None:
    """`uv sync --frozen` needs every member the lock file names, with its code."""
    copied = [REPO / source for source in _copied_sources()]
    for member in _workspace_members():
        assert any(member.is_relative_to(source) for source in copied), member


def test_the_dockerignore_keeps_sources_in_the_context() -> None:
    ignored = (REPO / "deploy" / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    for needed in ("libs", "services", "src", "pyproject.toml", "uv.lock", "README.md"):
        assert needed not in ignored


def test_dockerfile_builds_with_uv_and_runs_csms() -> None:
    dockerfile = _dockerfile()
    assert re.search(
        r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.M
    )
    assert "pip install" in dockerfile
    assert "uv sync --frozen --no-dev --package csms" in dockerfile
    assert 'ENTRYPOINT ["csms"]' in dockerfile


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone is not None else None


def test_docker_compose_config_accepts_the_file() -> None:
    """`docker compose config -q` parses and checks the file with the client alone."""
    command = _compose_command()
    if command is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed")
    checked = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr


def _smartcharging_only_names() -> set[str]:
    """What only the smart charging service reads (documented in its own guide too)."""
    classes = settings_classes()
    smartcharging = {
        env for cls in classes if cls.__name__ == "SmartChargingSettings" for env in env_names(cls)
    }
    others = {
        env for cls in classes if cls.__name__ != "SmartChargingSettings" for env in env_names(cls)
    }
    return smartcharging - others


def test_operators_guide_documents_every_variable() -> None:
    guide = (REPO / "docs" / "operators.md").read_text(encoding="utf-8")
    names = settings_env_names() - _smartcharging_only_names()
    undocumented = sorted(name for name in names if f"`{name}`" not in guide)
    assert not undocumented, f"docs/operators.md does not mention {undocumented}"


def test_the_guides_document_every_smartcharging_variable() -> None:
    guides = "".join(
        (REPO / "docs" / name).read_text(encoding="utf-8")
        for name in ("operators.md", "smart-charging.md")
    )
    names = _smartcharging_only_names()
    assert "CSMS_SMARTCHARGING_API_PORT" in names
    undocumented = sorted(name for name in names if f"`{name}`" not in guides)
    assert not undocumented, f"docs/operators.md and docs/smart-charging.md miss {undocumented}"


def _stages() -> dict[str, list[list[str]]]:
    """The Dockerfile's instructions by stage name."""
    stages: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    for words in _instructions():
        if words[0].upper() == "FROM" and len(words) >= 4 and words[2].upper() == "AS":
            current = stages.setdefault(words[3], [])
        current.append(words)
    return stages


def test_every_component_has_a_stage_with_its_command_and_port() -> None:
    stages = _stages()
    for component, (host_variable, port_variable) in LISTEN_PORT_VARIABLES.items():
        assert component in stages, f"no stage {component}"
        instructions = stages[component]
        env = {
            name: value
            for words in instructions
            if words[0].upper() == "ENV"
            for name, _, value in (word.partition("=") for word in words[1:])
        }
        assert env.get(host_variable) == "0.0.0.0", component
        port = env.get(port_variable)
        assert port, f"{component}: {port_variable} not preset"
        assert ["EXPOSE", port] in instructions, f"{component}: EXPOSE {port}"
        assert ["CMD", f'["{component}"]'] in instructions, f"{component}: CMD"


# ------------------------------------------------------------- REST proxy --


def _proxy() -> dict[str, Any]:
    (name,) = [name for name, service in SERVICES.items() if "nginx" in service.get("image", "")]
    return SERVICES[name]


def _proxy_mounts() -> dict[str, str]:
    """Container path -> host path of the proxy's bind mounts."""
    mounts: dict[str, str] = {}
    for volume in _proxy()["volumes"]:
        source, target, *_ = str(volume).split(":")
        mounts[target] = source
    return mounts


def test_the_rest_proxy_runs_the_generated_configuration() -> None:
    proxy = _proxy()
    assert re.match(r"^nginx:\d+\.\d+(\.\d+)?-alpine$", proxy["image"]), proxy["image"]
    command: list[str] = proxy["command"]
    config_path = command[command.index("-c") + 1]
    assert (REPO / _proxy_mounts()[config_path]).resolve() == COMPOSE_PROXY_CONF
    config = COMPOSE_PROXY_CONF.read_text(encoding="utf-8")
    (docs_root,) = re.findall(r"location = /openapi\.json \{\s*root ([^;]+);", config)
    assert (REPO / _proxy_mounts()[f"{docs_root}/openapi.json"]).resolve() == OPENAPI_FILE


def test_the_rest_proxy_is_published_where_it_listens_and_checked() -> None:
    proxy = _proxy()
    (listen,) = re.findall(
        r"^\s*listen (\d+);", COMPOSE_PROXY_CONF.read_text(encoding="utf-8"), re.M
    )
    (port_spec,) = proxy["ports"]
    host_port, container_port = str(port_spec).split(":")
    assert container_port == listen
    assert host_port == "8000", "the one base URL: http://localhost:8000/api/v1"
    assert f"http://127.0.0.1:{listen}/healthz" in " ".join(proxy["healthcheck"]["test"])
    assert proxy.get("user") not in {None, "0", "root"}


def test_the_rest_proxy_waits_for_every_replica_it_routes_to() -> None:
    """nginx resolves the replicas' names when it starts: they must be up by then."""
    replicas = {
        replica.split(":")[0]
        for addresses in compose_upstreams(route_table()).values()
        for replica in addresses
    }
    assert replicas
    assert set(_depends_on(_proxy())) == replicas
    config = COMPOSE_PROXY_CONF.read_text(encoding="utf-8")
    for replica in replicas:
        assert f"server {replica}:" in config, replica
