"""One OpenAPI document for the whole REST API, merged from every service's own.

Each service's FastAPI app documents its routes; the merged document holds every
``/api/...`` path of every service in the routing table and every path under its
public prefixes (served without a bearer token outside ``/api/v1``), each operation
marked with the service that serves it (``x-csms-service``). Component schemas that two
services name alike but define differently are renamed after their service
(``SessionsStationOut``, ``SmartchargingStationOut``), references included, so a
client generator sees one consistent set of types.
"""

import json
from collections.abc import Iterable
from typing import Any

from csms_cli.routing import API_BASE, ApiService

JsonObject = dict[str, Any]
SERVICE_KEY = "x-csms-service"
_SCHEMA_REF = "#/components/schemas/"
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


class OpenApiConflict(ValueError):
    """Two services document the same path or the same operation id."""


def merged_openapi(services: Iterable[ApiService], *, version: str = "1.0.0") -> JsonObject:
    """The whole REST API as one OpenAPI document."""
    by_name = {service.name: service for service in services}
    documents = {name: service.app().openapi() for name, service in by_name.items()}
    renames = _schema_renames(documents)
    merged: JsonObject = {
        "openapi": next(iter(documents.values()), {}).get("openapi", "3.1.0"),
        "info": {
            "title": "CSMS API",
            "version": version,
            "description": (
                f"Every REST route of the CSMS under one base URL ({API_BASE}), and the "
                "few served outside it without a bearer token (a payment provider's "
                "webhook, drivers' receipts, station file transfer). "
                f"Each operation names the service that serves it in `{SERVICE_KEY}`."
            ),
        },
        "paths": {},
        "components": {},
    }
    for name, document in documents.items():
        renamed = _rename_refs(document, renames.get(name, {}))
        public = tuple(path.prefix for path in by_name[name].public)
        _add_paths(merged["paths"], renamed.get("paths", {}), name, public)
        _add_components(merged["components"], renamed.get("components", {}), name)
    _check_operation_ids(merged["paths"])
    merged["components"] = {
        kind: dict(sorted(entries.items())) for kind, entries in merged["components"].items()
    }
    tags = sorted({tag for operation in _operations(merged["paths"]) for tag in _tags(operation)})
    if tags:
        merged["tags"] = [{"name": tag} for tag in tags]
    return merged


def dumps(document: JsonObject) -> str:
    """The document as published (``docs/openapi.json``, ``csms openapi``)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _schema_renames(documents: dict[str, JsonObject]) -> dict[str, dict[str, str]]:
    """Per service, the schema names to rename: those another service defines differently."""
    definitions: dict[str, dict[str, str]] = {}
    for service, document in documents.items():
        for schema, body in document.get("components", {}).get("schemas", {}).items():
            definitions.setdefault(schema, {})[service] = json.dumps(body, sort_keys=True)
    renames: dict[str, dict[str, str]] = {}
    for schema, by_service in definitions.items():
        if len(set(by_service.values())) > 1:
            for service in by_service:
                renames.setdefault(service, {})[schema] = _title(service) + schema
    return renames


def _title(service: str) -> str:
    return "".join(part.capitalize() for part in service.replace("_", "-").split("-"))


def _rename_refs(document: JsonObject, renames: dict[str, str]) -> JsonObject:
    if not renames:
        return document
    renamed: JsonObject = _rewrite(document, renames)
    schemas = renamed.get("components", {}).get("schemas", {})
    renamed.setdefault("components", {})["schemas"] = {
        renames.get(name, name): body for name, body in schemas.items()
    }
    return renamed


def _rewrite(value: Any, renames: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                _renamed_ref(item, renames)
                if key == "$ref" and isinstance(item, str)
                else _rewrite(item, renames)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(item, renames) for item in value]
    return value


def _renamed_ref(ref: str, renames: dict[str, str]) -> str:
    name = ref.removeprefix(_SCHEMA_REF)
    return _SCHEMA_REF + renames[name] if ref.startswith(_SCHEMA_REF) and name in renames else ref


def is_public(path: str, public: tuple[str, ...]) -> bool:
    """Whether ``path`` lies under one of the ``public`` prefixes."""
    return any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in public)


def _add_paths(
    merged: JsonObject, paths: JsonObject, service: str, public: tuple[str, ...] = ()
) -> None:
    for path, item in paths.items():
        if not path.startswith("/api/") and not is_public(path, public):
            continue  # /healthz, /metrics: each process's own, not the API
        if path in merged:
            owner = next(iter(_operations({path: merged[path]})), {}).get(SERVICE_KEY)
            raise OpenApiConflict(f"{path} is documented by {owner} and {service}")
        merged[path] = {
            key: {**operation, SERVICE_KEY: service} if key in _METHODS else operation
            for key, operation in item.items()
        }


def _add_components(merged: JsonObject, components: JsonObject, service: str) -> None:
    for kind, entries in components.items():
        target = merged.setdefault(kind, {})
        for name, body in entries.items():
            if name in target and target[name] != body:
                raise OpenApiConflict(f"components.{kind}.{name} differs in {service}")
            target[name] = body


def _operations(paths: JsonObject) -> list[JsonObject]:
    return [
        operation
        for item in paths.values()
        for key, operation in item.items()
        if key in _METHODS and isinstance(operation, dict)
    ]


def _tags(operation: JsonObject) -> list[str]:
    tags = operation.get("tags", [])
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def _check_operation_ids(paths: JsonObject) -> None:
    seen: dict[str, str] = {}
    for operation in _operations(paths):
        operation_id = operation.get("operationId")
        if operation_id is None:
            continue
        if operation_id in seen:
            raise OpenApiConflict(
                f"operationId {operation_id} is used by {seen[operation_id]} and "
                f"{operation[SERVICE_KEY]}"
            )
        seen[str(operation_id)] = str(operation[SERVICE_KEY])
