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
from pydantic_settings import BaseSettings

from csms_core.settings import CommonSettings

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
SETTINGS_CLASSES = (
    ("csms_gateway.settings", "GatewaySettings"),
    ("csms_sessions.settings", "SessionsSettings"),
)


def _load_compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return compose


COMPOSE = _load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
CSMS_SERVICES = [name for name, service in SERVICES.items() if "build" in service]


def _settings_env_names() -> set[str]:
    """Every CSMS_* variable some component reads, from the settings classes that exist."""
    classes: list[type[BaseSettings]] = [CommonSettings]
    for module_name, class_name in SETTINGS_CLASSES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        classes.append(getattr(module, class_name))
    return {
        f"{settings.model_config.get('env_prefix', '')}{field}".upper()
        for settings in classes
        for field in settings.model_fields
    }


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
    known = _settings_env_names()
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


def test_operators_guide_documents_every_variable() -> None:
    guide = (REPO / "docs" / "operators.md").read_text(encoding="utf-8")
    undocumented = sorted(name for name in _settings_env_names() if f"`{name}`" not in guide)
    assert not undocumented, f"docs/operators.md does not mention {undocumented}"
