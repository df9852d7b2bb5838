"""deploy/k8s, checked as files: structure, references, ports, probes and settings.

No cluster, no kubectl or kubeconform: the Kubernetes schemas are checked only
structurally (known kinds and API versions, known keys where typos are likely,
value types the API server insists on).
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
import yaml
from fastapi import FastAPI
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from csms_api.tracing import TraceSampling
from csms_billing.app import create_app as create_billing_app
from csms_cli.main import app as csms_app
from csms_cli.routing import route_table
from csms_firmware.app import create_app as create_firmware_app
from csms_gateway import handshake
from csms_security.app import create_app as create_security_app
from csms_sessions.app import create_app as create_sessions_app
from csms_smartcharging.app import create_app as create_smartcharging_app
from tests.deploy_routing import K8S_PROXY_CONF
from tests.test_deploy_files import (
    DOCKERFILE,
    MAX_DEPLOYED_TRACE_SAMPLE_RATIO,
    env_names,
    settings_classes,
    settings_env_names,
)

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
NAMESPACE = "csms"
# The distributed components and the settings class each one reads.
COMPONENTS = {
    "gateway": "GatewaySettings",
    "sessions": "SessionsSettings",
    "smartcharging": "SmartChargingSettings",
    "security": "SecuritySettings",
    "firmware": "FirmwareSettings",
    "billing": "BillingSettings",
}
API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "Ingress": "networking.k8s.io/v1",
    "PersistentVolumeClaim": "v1",
}
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
# Keys the API server accepts, where a typo would otherwise be dropped silently
# (kubectl apply warns at best): a structural check, not the full schema.
KNOWN_KEYS = {
    "object": {"apiVersion", "kind", "metadata", "spec", "data", "stringData", "type"},
    "metadata": {"name", "namespace", "labels", "annotations"},
    "deployment_spec": {
        "replicas",
        "selector",
        "template",
        "strategy",
        "minReadySeconds",
        "revisionHistoryLimit",
        "progressDeadlineSeconds",
        "paused",
    },
    "pod_spec": {
        "containers",
        "initContainers",
        "volumes",
        "securityContext",
        "terminationGracePeriodSeconds",
        "enableServiceLinks",
        "serviceAccountName",
        "automountServiceAccountToken",
        "topologySpreadConstraints",
        "affinity",
        "nodeSelector",
        "tolerations",
        "priorityClassName",
        "imagePullSecrets",
    },
    "container": {
        "name",
        "image",
        "imagePullPolicy",
        "command",
        "args",
        "ports",
        "env",
        "envFrom",
        "resources",
        "startupProbe",
        "readinessProbe",
        "livenessProbe",
        "securityContext",
        "volumeMounts",
        "lifecycle",
        "workingDir",
    },
    "probe": {
        "httpGet",
        "tcpSocket",
        "grpc",
        "exec",
        "initialDelaySeconds",
        "periodSeconds",
        "timeoutSeconds",
        "failureThreshold",
        "successThreshold",
        "terminationGracePeriodSeconds",
    },
    "http_get": {"path", "port", "scheme", "host", "httpHeaders"},
    "pod_security": {
        "runAsNonRoot",
        "runAsUser",
        "runAsGroup",
        "fsGroup",
        "seccompProfile",
        "supplementalGroups",
        "fsGroupChangePolicy",
    },
    "container_security": {
        "runAsNonRoot",
        "runAsUser",
        "runAsGroup",
        "allowPrivilegeEscalation",
        "readOnlyRootFilesystem",
        "capabilities",
        "privileged",
        "seccompProfile",
    },
    "service_spec": {
        "type",
        "selector",
        "ports",
        "sessionAffinity",
        "sessionAffinityConfig",
        "externalTrafficPolicy",
        "internalTrafficPolicy",
        "loadBalancerClass",
        "ipFamilyPolicy",
    },
    "service_port": {"name", "port", "targetPort", "protocol", "appProtocol", "nodePort"},
    "container_port": {"name", "containerPort", "protocol", "hostPort", "hostIP"},
    "hpa_spec": {"scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior"},
    "pdb_spec": {"selector", "minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy"},
    "ingress_spec": {"ingressClassName", "defaultBackend", "rules", "tls"},
    "ingress_path": {"path", "pathType", "backend"},
}
ROUTES = route_table()
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Document:
    path: Path
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name"))

    def __str__(self) -> str:
        return f"{self.path.name}: {self.kind}/{self.name}"


def _manifest_files() -> list[Path]:
    return sorted(
        path for path in K8S.iterdir() if path.suffix in {".yaml", ".yml"} and path != KUSTOMIZATION
    )


def _load() -> list[Document]:
    documents: list[Document] = []
    for path in _manifest_files():
        for body in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if body is not None:
                assert isinstance(body, dict), f"{path.name}: a document is not a mapping"
                documents.append(Document(path, body))
    return documents


DOCUMENTS = _load()
KUSTOMIZATION_BODY: dict[str, Any] = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))


def _of_kind(kind: str) -> list[Document]:
    return [document for document in DOCUMENTS if document.kind == kind]


def _one(kind: str, name: str) -> Document:
    matches = [document for document in _of_kind(kind) if document.name == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


DEPLOYMENTS = _of_kind("Deployment")
# The REST proxy (api.yaml) runs nginx, not csms; every other Deployment is a component.
PROXY = "csms-api"
COMPONENT_DEPLOYMENTS = [deployment for deployment in DEPLOYMENTS if deployment.name != PROXY]


def _pod_spec(deployment: Document) -> dict[str, Any]:
    spec: dict[str, Any] = deployment.body["spec"]["template"]["spec"]
    return spec


def _pod_labels(deployment: Document) -> dict[str, str]:
    labels: dict[str, str] = deployment.body["spec"]["template"]["metadata"]["labels"]
    return labels


def _containers() -> Iterator[tuple[Document, dict[str, Any]]]:
    """The csms containers of the components' Deployments."""
    for deployment in COMPONENT_DEPLOYMENTS:
        for container in _pod_spec(deployment)["containers"]:
            yield deployment, container


def _subcommand(container: dict[str, Any]) -> str:
    """The `csms` subcommand a container runs (the image's entrypoint is `csms`)."""
    command: list[str] = container.get("command", [])
    args: list[str] = container.get("args", [])
    words = [*command[1:], *args] if command else args
    assert not command or command[0] == "csms", f"{container['name']}: runs {command}"
    assert words, f"{container['name']}: no subcommand (the image would print --help)"
    return words[0]


def _component(deployment: Document) -> str:
    containers = _pod_spec(deployment)["containers"]
    assert len(containers) == 1, f"{deployment}: one container expected"
    return _subcommand(containers[0])


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _selected_deployments(selector: dict[str, str]) -> list[Document]:
    return [deployment for deployment in DEPLOYMENTS if _matches(selector, _pod_labels(deployment))]


def _env_sources(container: dict[str, Any]) -> list[Document]:
    sources: list[Document] = []
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            sources.append(_one("ConfigMap", source["configMapRef"]["name"]))
        elif "secretRef" in source:
            sources.append(_one("Secret", source["secretRef"]["name"]))
        else:
            raise AssertionError(f"{container['name']}: unknown envFrom {source}")
    return sources


def _source_values(source: Document) -> dict[str, Any]:
    values: dict[str, Any] = {**source.body.get("data", {}), **source.body.get("stringData", {})}
    return values


POD_NAME = "csms-gateway-5d8f7c9b6-x2x7q"  # what metadata.name looks like


def _effective_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment: envFrom in order, then env (which wins)."""
    environment: dict[str, str] = {}
    for source in _env_sources(container):
        environment.update({key: str(value) for key, value in _source_values(source).items()})
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = str(variable["value"])
        elif variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            environment[variable["name"]] = POD_NAME
        else:
            raise AssertionError(f"{container['name']}: unchecked env source {variable}")
    return environment


def _settings_class(component: str) -> type[BaseSettings]:
    by_name = {settings.__name__: settings for settings in settings_classes()}
    return by_name[COMPONENTS[component]]


def _settings(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> BaseSettings:
    """The component's settings as it would read them in this container, once the operator
    filled in the Secret's placeholders (production refuses them as they are)."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("CSMS_"):
            monkeypatch.delenv(name)
    for name, value in _effective_env(container).items():
        monkeypatch.setenv(name, value.replace("CHANGE-ME", "an-operators-Secret-4f2"))
    return _settings_class(_subcommand(container))()


def _container_ports(container: dict[str, Any]) -> dict[str | int, int]:
    """Declared container ports by name and by number."""
    ports: dict[str | int, int] = {}
    for port in container.get("ports", []):
        ports[int(port["containerPort"])] = int(port["containerPort"])
        if "name" in port:
            ports[str(port["name"])] = int(port["containerPort"])
    return ports


# ----------------------------------------------------------------- files --


def test_the_manifests_are_there() -> None:
    assert _manifest_files()
    assert {document.kind for document in DOCUMENTS} == set(API_VERSIONS)


def test_kustomization_lists_exactly_the_files_present() -> None:
    assert KUSTOMIZATION_BODY["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert KUSTOMIZATION_BODY["kind"] == "Kustomization"
    resources: list[str] = KUSTOMIZATION_BODY["resources"]
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    assert sorted(resources) == [path.name for path in _manifest_files()]
    assert KUSTOMIZATION_BODY.get("namespace") == NAMESPACE


def test_kustomization_images_name_images_the_manifests_use() -> None:
    used = {container["image"].rsplit(":", 1)[0] for _, container in _containers()}
    for image in KUSTOMIZATION_BODY.get("images") or []:
        assert image["name"] in used, f"images: {image['name']} is not used"


# --------------------------------------------------------------- objects --


def test_every_object_has_api_version_kind_name_and_namespace() -> None:
    for document in DOCUMENTS:
        body = document.body
        assert body.get("apiVersion") and body.get("kind"), document
        assert body.get("metadata", {}).get("name"), document
        assert body["apiVersion"] == API_VERSIONS.get(document.kind), document
        assert set(body) <= KNOWN_KEYS["object"], f"{document}: {set(body)}"
        assert set(body["metadata"]) <= KNOWN_KEYS["metadata"], document
        assert DNS_LABEL.match(document.name) and len(document.name) <= 63, document
        if document.kind == "Namespace":
            assert "namespace" not in body["metadata"], document
        else:
            assert body["metadata"].get("namespace") == NAMESPACE, document


def test_the_namespace_is_declared_once() -> None:
    assert [document.name for document in _of_kind("Namespace")] == [NAMESPACE]


def test_names_are_unique_per_kind() -> None:
    keys = [(document.kind, document.name) for document in DOCUMENTS]
    assert len(keys) == len(set(keys)), keys


def test_labels_and_configuration_values_are_strings() -> None:
    """The API server rejects a number or a boolean where a string belongs."""
    for document in DOCUMENTS:
        for key, value in document.body["metadata"].get("labels", {}).items():
            assert isinstance(value, str), f"{document}: label {key}={value!r}"
        for key, value in _source_values(document).items():
            assert isinstance(value, str), f"{document}: {key}={value!r} must be quoted"
    for deployment, container in _containers():
        for variable in container.get("env", []):
            if "value" in variable:
                assert isinstance(variable["value"], str), f"{deployment}: {variable}"


# ----------------------------------------------------------- deployments --


def test_one_deployment_per_component() -> None:
    components = sorted(_component(deployment) for deployment in COMPONENT_DEPLOYMENTS)
    assert components == sorted(COMPONENTS)


def test_deployments_run_two_replicas_at_least() -> None:
    for deployment in DEPLOYMENTS:
        assert deployment.body["spec"].get("replicas", 1) >= 2, deployment


def test_deployments_use_known_keys() -> None:
    for deployment in DEPLOYMENTS:
        spec = deployment.body["spec"]
        assert set(spec) <= KNOWN_KEYS["deployment_spec"], f"{deployment}: {set(spec)}"
        pod = _pod_spec(deployment)
        assert set(pod) <= KNOWN_KEYS["pod_spec"], f"{deployment}: {set(pod)}"
        assert set(pod.get("securityContext", {})) <= KNOWN_KEYS["pod_security"], deployment
        for container in pod["containers"]:
            assert set(container) <= KNOWN_KEYS["container"], f"{deployment}: {set(container)}"
            security = container.get("securityContext", {})
            assert set(security) <= KNOWN_KEYS["container_security"], deployment
            for port in container.get("ports", []):
                assert set(port) <= KNOWN_KEYS["container_port"], f"{deployment}: {port}"
            for probe_name in PROBES:
                probe = container.get(probe_name, {})
                assert set(probe) <= KNOWN_KEYS["probe"], f"{deployment}: {probe_name}"
                assert set(probe.get("httpGet", {})) <= KNOWN_KEYS["http_get"], deployment


def test_every_deployment_selector_matches_its_template_labels() -> None:
    for deployment in DEPLOYMENTS:
        selector = deployment.body["spec"]["selector"]
        assert set(selector) == {"matchLabels"}, f"{deployment}: only matchLabels is checked"
        match_labels: dict[str, str] = selector["matchLabels"]
        assert match_labels, deployment
        assert _matches(match_labels, _pod_labels(deployment)), deployment
        # ...and no other Deployment's pods: two controllers must not fight over a pod.
        assert _selected_deployments(match_labels) == [deployment], deployment


def test_topology_spread_selects_the_deployments_own_pods() -> None:
    for deployment in DEPLOYMENTS:
        for constraint in _pod_spec(deployment).get("topologySpreadConstraints", []):
            selector = constraint["labelSelector"]["matchLabels"]
            assert _selected_deployments(selector) == [deployment], deployment


def test_containers_run_real_csms_subcommands() -> None:
    group = typer.main.get_command(csms_app)
    assert isinstance(group, typer.core.TyperGroup)
    subcommands = set(group.commands)
    assert set(COMPONENTS) <= subcommands, subcommands
    for deployment, container in _containers():
        assert _subcommand(container) in subcommands, f"{deployment}: {_subcommand(container)}"
        assert _subcommand(container) in COMPONENTS, f"{deployment}: not a distributed component"


def test_container_ports_are_valid_and_unique() -> None:
    for deployment, container in _containers():
        ports = container.get("ports", [])
        assert ports, f"{deployment}: declares no port"
        numbers = [port["containerPort"] for port in ports]
        names = [port["name"] for port in ports if "name" in port]
        assert all(isinstance(number, int) and 0 < number < 65536 for number in numbers)
        assert len(numbers) == len(set(numbers)) and len(names) == len(set(names)), deployment
        for name in names:
            assert PORT_NAME.match(name) and len(name) <= 15, f"{deployment}: port name {name}"


def test_every_csms_variable_is_a_settings_field() -> None:
    known = settings_env_names()
    assert "CSMS_SMARTCHARGING_API_PORT" in known  # aliases count
    for deployment, container in _containers():
        names = [variable["name"] for variable in container.get("env", [])]
        assert len(names) == len(set(names)), f"{deployment}: a variable is set twice"
        unknown = {name for name in names if name.startswith("CSMS_")} - known
        assert not unknown, f"{deployment} sets variables no component reads: {sorted(unknown)}"
        # A container's own variables are for its component: CSMS_API_PORT on the smart
        # charging service (which reads CSMS_SMARTCHARGING_API_PORT) would do nothing.
        own = env_names(_settings_class(_subcommand(container)))
        ignored = {name for name in names if name.startswith("CSMS_")} - own
        assert not ignored, f"{deployment}: its component ignores {sorted(ignored)}"
        for source in _env_sources(container):
            keys = set(_source_values(source))
            assert keys, f"{source} is empty"
            assert not keys - known, f"{source}: no component reads {sorted(keys - known)}"


def test_every_container_reads_valid_distributed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The component's settings class accepts the container's environment as a whole,
    in distributed mode (both Kafka and Redis)."""
    for deployment, container in _containers():
        with monkeypatch.context() as patch:
            settings = _settings(container, patch)
        assert getattr(settings, "kafka_bootstrap", None), deployment
        assert getattr(settings, "redis_url", None), deployment
        assert str(getattr(settings, "database_url", "")).startswith("postgresql"), deployment


def test_every_container_records_a_small_share_of_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its station messages (gateway) and its REST requests (services), as read in the pod."""
    for deployment, container in _containers():
        with monkeypatch.context() as patch:
            ratios = (
                _settings(container, patch).model_dump()["trace_sample_ratio"],
                TraceSampling().trace_sample_ratio,
            )
        for ratio in ratios:
            assert 0 < ratio <= MAX_DEPLOYED_TRACE_SAMPLE_RATIO, f"{deployment}: ratio {ratio}"


def test_every_component_listens_on_its_declared_port(monkeypatch: pytest.MonkeyPatch) -> None:
    for deployment, container in _containers():
        with monkeypatch.context() as patch:
            settings = _settings(container, patch)
        if _subcommand(container) == "gateway":
            host, port = settings.model_dump()["ocpp_host"], settings.model_dump()["ocpp_port"]
        else:
            host, port = settings.model_dump()["api_host"], settings.model_dump()["api_port"]
        assert host == "0.0.0.0", f"{deployment}: listens on {host} only"
        assert port in _container_ports(container).values(), f"{deployment}: listens on {port}"


def test_the_gateway_id_comes_from_the_pod_name() -> None:
    gateways = [container for _, container in _containers() if _subcommand(container) == "gateway"]
    assert gateways
    for container in gateways:
        variables = {variable["name"]: variable for variable in container.get("env", [])}
        field_ref = variables["CSMS_GATEWAY_ID"]["valueFrom"]["fieldRef"]
        assert field_ref["fieldPath"] == "metadata.name"
        for source in _env_sources(container):
            assert "CSMS_GATEWAY_ID" not in _source_values(source), source


def _probe_port(probe: dict[str, Any]) -> str | int:
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if handler in probe:
            port: str | int = probe[handler]["port"]
            return port
    raise AssertionError(f"probe without a port: {probe}")


def _health_paths(component: str) -> set[str]:
    """The GET paths the component really answers outside its REST API."""
    if component == "gateway":
        source = Path(handshake.__file__).read_text(encoding="utf-8")
        return set(re.findall(r'path == "(/[^"]*)"', source))
    factories: dict[str, Callable[[Any], FastAPI]] = {
        "sessions": create_sessions_app,
        "smartcharging": create_smartcharging_app,
        "security": create_security_app,
        "firmware": create_firmware_app,
        "billing": create_billing_app,
    }
    # A placeholder service: only the routes are read, none is called.
    web_app = factories[component](object())
    return {
        path
        for route in web_app.routes
        if (path := getattr(route, "path", None)) and "GET" in getattr(route, "methods", set())
    }


def test_probes_ask_real_health_paths_on_declared_ports() -> None:
    for deployment, container in _containers():
        assert "readinessProbe" in container and "livenessProbe" in container, deployment
        paths = _health_paths(_subcommand(container))
        assert "/healthz" in paths, paths
        for probe_name in PROBES:
            if probe_name not in container:
                continue
            probe = container[probe_name]
            port = _probe_port(probe)
            assert port in _container_ports(container), f"{deployment}: {probe_name} port {port}"
            if "httpGet" in probe:
                path = probe["httpGet"]["path"]
                assert path in paths, f"{deployment}: {probe_name} asks {path}, not in {paths}"


def test_readiness_waits_for_healthz() -> None:
    """/healthz says "migrated and consuming" (503 before); a liveness probe on it would
    restart a replica that is only slow to start."""
    for deployment, container in _containers():
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz", deployment


def _quantity(value: str | int | float) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    for unit, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * factor
    return float(text)


def test_every_container_has_requests_within_limits() -> None:
    for deployment, container in _containers():
        resources = container.get("resources", {})
        for resource in ("cpu", "memory"):
            request = resources.get("requests", {}).get(resource)
            limit = resources.get("limits", {}).get(resource)
            assert request is not None and limit is not None, f"{deployment}: {resource}"
            assert 0 < _quantity(request) <= _quantity(limit), f"{deployment}: {resource}"


def _dockerfile_uid() -> int:
    """The uid of the user the runtime image runs as (`USER name` of a `useradd --uid`)."""
    dockerfile = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    users: dict[str, int] = {}
    for command in re.findall(r"useradd\s([^\n]*?)(?:&&|$)", dockerfile, re.M):
        words = command.split()
        users[words[-1]] = int(words[words.index("--uid") + 1])
    (user,) = set(re.findall(r"^USER\s+([^:\s]+)", dockerfile, re.M))
    return int(user) if user.isdigit() else users[user]


def test_pods_run_as_the_images_user() -> None:
    uid = _dockerfile_uid()
    assert uid == 10001
    for deployment in COMPONENT_DEPLOYMENTS:
        security = _pod_spec(deployment)["securityContext"]
        assert security["runAsNonRoot"] is True, deployment
        assert security["runAsUser"] == uid, deployment
        for container in _pod_spec(deployment)["containers"]:
            container_security = container.get("securityContext", {})
            assert container_security.get("runAsUser", uid) == uid, deployment
            assert container_security.get("allowPrivilegeEscalation") is False, deployment
            assert container_security.get("capabilities", {}).get("drop") == ["ALL"], deployment


def test_a_read_only_root_has_a_writable_tmp() -> None:
    for deployment in DEPLOYMENTS:
        pod = _pod_spec(deployment)
        volumes = {volume["name"] for volume in pod.get("volumes", [])}
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            mounts = container.get("volumeMounts", [])
            assert {mount["name"] for mount in mounts} <= volumes, deployment
            if container.get("securityContext", {}).get("readOnlyRootFilesystem"):
                tmp = "/tmp"  # noqa: S108 (an emptyDir of the pod's own)
                assert tmp in {mount["mountPath"] for mount in mounts}, deployment


def test_service_links_are_off() -> None:
    """Kubernetes sets <SERVICE>_PORT=tcp://... for every Service of the namespace; with
    Services named csms-* those are CSMS_* variables the settings might read."""
    for deployment in DEPLOYMENTS:
        assert _pod_spec(deployment).get("enableServiceLinks") is False, deployment


def test_termination_grace_outlasts_the_shutdown_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    for deployment, container in _containers():
        with monkeypatch.context() as patch:
            settings = _settings(container, patch)
        shutdown_grace = float(getattr(settings, "shutdown_grace_s", 0.0))
        env = _effective_env(container)
        shutdown_grace = max(shutdown_grace, float(env.get("CSMS_SHUTDOWN_GRACE_S", 0)))
        grace = _pod_spec(deployment).get("terminationGracePeriodSeconds", 30)
        assert grace > shutdown_grace + 5, f"{deployment}: {grace}s for {shutdown_grace}s"


def test_containers_use_one_tagged_image() -> None:
    images = {container["image"] for _, container in _containers()} | {
        container["image"] for container in _pod_spec(_one("Deployment", PROXY))["initContainers"]
    }
    assert len(images) == 1, images
    (image,) = images
    assert re.match(r"^[\w.-]+(/[\w.-]+)+:[\w][\w.-]*$", image), image


# -------------------------------------------------------------- services --


def test_every_service_selects_a_deployment_and_targets_a_declared_port() -> None:
    services = _of_kind("Service")
    assert services
    for service in services:
        spec = service.body["spec"]
        assert set(spec) <= KNOWN_KEYS["service_spec"], f"{service}: {set(spec)}"
        selector: dict[str, str] = spec["selector"]
        assert selector, service
        selected = _selected_deployments(selector)
        assert len(selected) == 1, f"{service} selects {[str(d) for d in selected]}"
        (container,) = _pod_spec(selected[0])["containers"]
        declared = _container_ports(container)
        for port in spec["ports"]:
            assert set(port) <= KNOWN_KEYS["service_port"], f"{service}: {port}"
            target = port.get("targetPort", port["port"])
            assert target in declared, f"{service}: targetPort {target} not in {list(declared)}"


def test_every_component_has_a_service() -> None:
    served = {
        _component(deployment)
        for service in _of_kind("Service")
        for deployment in _selected_deployments(service.body["spec"]["selector"])
        if deployment.name != PROXY
    }
    assert served == set(COMPONENTS)


# ------------------------------------------------------------ gateway ops --


def _deployment_named(name: str) -> Document:
    return _one("Deployment", name)


def test_the_gateway_has_a_pdb_and_an_hpa() -> None:
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
        targets: set[str] = set()
        for document in _of_kind(kind):
            if kind == "PodDisruptionBudget":
                selected = _selected_deployments(document.body["spec"]["selector"]["matchLabels"])
                targets.update(_component(d) for d in selected if d.name != PROXY)
            else:
                ref = document.body["spec"]["scaleTargetRef"]
                targets.add(_component(_deployment_named(ref["name"])))
        assert "gateway" in targets, kind


def test_pdbs_select_exactly_one_deployment_and_let_a_pod_go() -> None:
    for pdb in _of_kind("PodDisruptionBudget"):
        spec = pdb.body["spec"]
        assert set(spec) <= KNOWN_KEYS["pdb_spec"], pdb
        assert ("minAvailable" in spec) != ("maxUnavailable" in spec), pdb
        (deployment,) = _selected_deployments(spec["selector"]["matchLabels"])
        replicas = int(deployment.body["spec"].get("replicas", 1))
        if "maxUnavailable" in spec:
            assert int(spec["maxUnavailable"]) >= 1, pdb
        else:
            assert int(spec["minAvailable"]) < replicas, f"{pdb}: blocks every drain"


def test_hpas_target_existing_deployments_on_cpu() -> None:
    for hpa in _of_kind("HorizontalPodAutoscaler"):
        spec = hpa.body["spec"]
        assert set(spec) <= KNOWN_KEYS["hpa_spec"], hpa
        ref = spec["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment"), hpa
        deployment = _deployment_named(ref["name"])
        assert 1 <= spec.get("minReplicas", 1) <= spec["maxReplicas"], hpa
        assert spec.get("minReplicas", 1) >= deployment.body["spec"].get("replicas", 1), hpa
        cpu = [
            metric["resource"]["target"]
            for metric in spec["metrics"]
            if metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
        ]
        assert cpu and all(target["type"] == "Utilization" for target in cpu), hpa
        assert all(0 < target["averageUtilization"] <= 100 for target in cpu), hpa
        # Utilization is relative to the CPU request: every container needs one.
        for container in _pod_spec(deployment)["containers"]:
            assert container["resources"]["requests"]["cpu"], hpa


# ---------------------------------------------------------- config, docs --


def test_the_secret_holds_placeholders_only() -> None:
    secrets = _of_kind("Secret")
    assert secrets
    for secret in secrets:
        assert "data" not in secret.body, f"{secret}: use stringData placeholders"
        assert "CSMS_DATABASE_URL" in secret.body["stringData"], secret
        for key, value in secret.body["stringData"].items():
            assert "CHANGE-ME" in value, f"{secret}: {key} looks like a real value"
        assert "TEMPLATE" in secret.path.read_text(encoding="utf-8"), secret


def test_platform_addresses_are_configured_and_documented() -> None:
    readme = (REPO / "deploy" / "README.md").read_text(encoding="utf-8")
    values: dict[str, str] = {}
    for document in [*_of_kind("ConfigMap"), *_of_kind("Secret")]:
        values.update({key: str(value) for key, value in _source_values(document).items()})
    for variable in ("CSMS_KAFKA_BOOTSTRAP", "CSMS_REDIS_URL", "CSMS_DATABASE_URL"):
        assert variable in values, f"{variable} is configured nowhere"
        assert f"`{variable}`" in readme and values[variable] in readme, variable
    for path in [KUSTOMIZATION, *_manifest_files()]:
        assert f"`{path.name}`" in readme or path == KUSTOMIZATION, f"README misses {path.name}"


# ------------------------------------------------------------- REST proxy --


def _proxy_pod() -> dict[str, Any]:
    return _pod_spec(_one("Deployment", PROXY))


def _proxy_config() -> str:
    return K8S_PROXY_CONF.read_text(encoding="utf-8")


def _mounts(container: dict[str, Any]) -> dict[str, str]:
    return {mount["name"]: mount["mountPath"] for mount in container.get("volumeMounts", [])}


def test_the_proxy_runs_the_generated_configuration_from_its_config_map() -> None:
    """The ConfigMap csms-api-proxy is kustomize's, from the generated api-proxy.conf."""
    (generator,) = KUSTOMIZATION_BODY["configMapGenerator"]
    assert generator["name"] == "csms-api-proxy"
    assert generator["files"] == [f"nginx.conf={K8S_PROXY_CONF.name}"]
    pod = _proxy_pod()
    (nginx,) = pod["containers"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    config_volume = next(n for n, v in volumes.items() if "configMap" in v)
    assert volumes[config_volume]["configMap"]["name"] == generator["name"]
    command: list[str] = nginx["command"]
    assert command[0] == "nginx" and command[command.index("-c") + 1] == (
        f"{_mounts(nginx)[config_volume]}/nginx.conf"
    )
    assert re.match(r"^nginx:\d+\.\d+(\.\d+)?-alpine$", nginx["image"]), nginx["image"]


def test_the_proxy_listens_and_answers_its_probes_on_its_declared_port() -> None:
    (nginx,) = _proxy_pod()["containers"]
    (listen,) = re.findall(r"^\s*listen (\d+);", _proxy_config(), re.M)
    assert int(listen) in _container_ports(nginx).values()
    for probe_name in ("readinessProbe", "livenessProbe"):
        probe = nginx[probe_name]["httpGet"]
        assert probe["path"] == "/healthz" and "location = /healthz" in _proxy_config()
        assert _container_ports(nginx)[probe["port"]] == int(listen)


def test_the_proxy_serves_the_openapi_document_its_init_container_writes() -> None:
    pod = _proxy_pod()
    (openapi,) = pod["initContainers"]
    (nginx,) = pod["containers"]
    args: list[str] = openapi["args"]
    group = typer.main.get_command(csms_app)
    assert isinstance(group, typer.core.TyperGroup)
    assert args[0] == "openapi" and args[0] in group.commands
    written = Path(args[args.index("--output") + 1])
    (docs_root,) = re.findall(r"location = /openapi\.json \{\s*root ([^;]+);", _proxy_config())
    assert written == Path(docs_root) / "openapi.json"
    shared = [
        name
        for name, path in _mounts(openapi).items()
        if path == str(written.parent) and _mounts(nginx).get(name) == docs_root
    ]
    assert shared, "the init container and nginx share no volume at the docs root"


def test_the_proxy_runs_unprivileged() -> None:
    pod = _proxy_pod()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in [*pod["initContainers"], *pod["containers"]]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["allowPrivilegeEscalation"] is False, container["name"]
        assert "/tmp" in _mounts(container).values(), container["name"]  # noqa: S108
    assert "pid /tmp/nginx.pid;" in _proxy_config()


def test_the_ingress_sends_the_rest_api_to_the_proxy() -> None:
    (ingress,) = _of_kind("Ingress")
    spec = ingress.body["spec"]
    assert set(spec) <= KNOWN_KEYS["ingress_spec"], spec
    (proxy_service,) = [
        service
        for service in _of_kind("Service")
        if _selected_deployments(service.body["spec"]["selector"]) == [_one("Deployment", PROXY)]
    ]
    port_names = {port["name"] for port in proxy_service.body["spec"]["ports"]}
    routed: dict[str, str] = {}
    for rule in spec["rules"]:
        for path in rule["http"]["paths"]:
            assert set(path) <= KNOWN_KEYS["ingress_path"], path
            assert path["pathType"] in {"Prefix", "Exact"}, path  # portable to any controller
            backend = path["backend"]["service"]
            assert backend["name"] == proxy_service.name, path
            assert backend["port"]["name"] in port_names, path
            routed[path["path"]] = path["pathType"]
    public = {route.prefix: "Prefix" for route in ROUTES.public}
    assert routed == {"/api": "Prefix", "/openapi.json": "Exact", "/docs": "Exact", **public}
    for route in ROUTES.routes:  # every other prefix of the table lies under /api
        assert route.public or route.prefix.startswith("/api/"), route


def test_the_proxy_reaches_every_rest_service_through_its_service() -> None:
    upstream_servers = set(re.findall(r"server ([\w.-]+:\d+) ", _proxy_config()))
    for service in ROUTES.services:
        kubernetes_service = _one("Service", f"csms-{service.name}")
        (port,) = (p for p in kubernetes_service.body["spec"]["ports"] if p["name"] == "http")
        assert f"{kubernetes_service.name}:{port['port']}" in upstream_servers, service.name


def test_production_refuses_the_secrets_placeholders_as_they_stand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Applied without filling in secret.yaml, every component refuses to start."""
    import os

    containers = list(_containers())
    assert containers
    for _deployment, container in containers:
        with monkeypatch.context() as patch:
            for name in list(os.environ):
                if name.upper().startswith("CSMS_"):
                    patch.delenv(name)
            for name, value in _effective_env(container).items():
                patch.setenv(name, value)
            with pytest.raises(ValidationError, match="a placeholder, not a secret"):
                _settings_class(_subcommand(container))()
