"""The compiled validators judge every official schema exactly as ``jsonschema`` does.

``schemas.validate`` trusts a compiled (``jsonschema-rs``) "valid" without asking
``jsonschema``; validation stays as strict as before only if the two never disagree.
For every request and response schema of 1.6, 2.0.1 and 2.1, payloads are generated
from the schema itself (seeded, so each run checks the same ones), most of them
conforming and the rest broken in one place the way stations break them (a wrong
type, a missing required field, an unknown property, an over-long string, a value
outside its enum or range, a bad date-time, 1.0 or true for an integer), and both
validators' verdicts must be the same for each.
"""

import random
from importlib import resources
from typing import Any

import pytest

from csms_ocpp import schemas
from csms_ocpp.versions import OcppVersion

Schema = dict[str, Any]

GOOD_DATE_TIMES = [
    "2026-11-25T10:00:00Z",
    "2026-11-25T10:00:00.123Z",
    "2026-11-25T10:00:00+02:00",
    "2026-11-25T10:00:00.123456-05:30",
]
BAD_DATE_TIMES = [
    "2026-11-25",
    "2026-11-25 10:00:00Z",
    "2026-11-25T10:00:00",
    "2026-13-25T10:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-11-25t10:00:00z",
    "yesterday",
    "",
]
WRONG_TYPES: list[Any] = ["text", 7, 7.5, 1.0, True, None, [], {}, 10**20]


class Instances:
    """Payloads built from one schema: conforming, or broken at a chance per node."""

    def __init__(self, schema: Schema, rng: random.Random, break_chance: float) -> None:
        self.root = schema
        self.rng = rng
        self.break_chance = break_chance

    def resolve(self, node: Schema) -> Schema:
        while "$ref" in node:
            target: Any = self.root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def make(self, node: Schema, depth: int = 0) -> Any:
        node = self.resolve(node)
        if self.rng.random() < self.break_chance:
            return self.broken(node)
        if "enum" in node:
            return self.rng.choice(node["enum"])
        kind = node.get("type", "object")
        if isinstance(kind, list):
            kind = self.rng.choice(kind)
        return getattr(self, f"make_{kind}")(node, depth)

    def make_object(self, node: Schema, depth: int) -> dict[str, Any]:
        required = set(node.get("required", []))
        return {
            name: self.make(child, depth + 1)
            for name, child in node.get("properties", {}).items()
            if name in required or (depth < 5 and self.rng.random() < 0.5)
        }

    def make_array(self, node: Schema, depth: int) -> list[Any]:
        low = node.get("minItems", 0)
        count = self.rng.randint(low, min(node.get("maxItems", low + 3), low + 3))
        return [self.make(node.get("items", {}), depth + 1) for _ in range(count)]

    def make_string(self, node: Schema, _depth: int) -> str:
        if node.get("format") == "date-time":
            return self.rng.choice(GOOD_DATE_TIMES)
        length = self.rng.randint(0, min(node.get("maxLength", 20), 40))
        return "".join(self.rng.choice("aZ0-é€😀 ") for _ in range(length))

    def make_integer(self, node: Schema, _depth: int) -> int:
        return self.rng.randint(int(node.get("minimum", -1000)), int(node.get("maximum", 1000)))

    def make_number(self, node: Schema, _depth: int) -> float:
        if "multipleOf" in node:  # e.g. a charging limit of 0.3 (A or W) in steps of 0.1
            step: float = node["multipleOf"]
            return self.rng.randint(0, 1000) * step
        return self.rng.uniform(node.get("minimum", -1e6), node.get("maximum", 1e6))

    def make_boolean(self, _node: Schema, _depth: int) -> bool:
        return self.rng.random() < 0.5

    def make_null(self, _node: Schema, _depth: int) -> None:
        return None

    def broken(self, node: Schema) -> Any:
        """A value that breaks ``node`` in one way (or, by chance, one that does not)."""
        options: list[Any] = [self.rng.choice(WRONG_TYPES)]
        if "enum" in node:
            options.append("NotOneOfThem")
        if "maxLength" in node:
            options.append("x" * (node["maxLength"] + 1))
        if node.get("format") == "date-time":
            options.append(self.rng.choice(BAD_DATE_TIMES))
        if "minimum" in node:
            options.append(node["minimum"] - 1)
        if "maximum" in node:
            options.append(node["maximum"] + 0.5)
        if node.get("type") == "object":
            complete = self.make_object(node, 9)
            options.append({**complete, "notInTheSchema": 1})
            if node.get("required"):
                options.append(
                    {k: v for k, v in complete.items() if k != self.rng.choice(node["required"])}
                )
        if node.get("type") == "array":
            options.append([])
        return self.rng.choice(options)


def all_schemas() -> list[tuple[OcppVersion, str, bool]]:
    found = []
    for version in OcppVersion:
        package = f"ocpp.v{version.number.replace('.', '')}.schemas"
        for entry in resources.files(package).iterdir():
            name = entry.name.removesuffix(".json")
            if not entry.name.endswith(".json"):
                continue
            response = name.endswith("Response")
            action = name.removesuffix("Response").removesuffix("Request")
            if schemas.has_schema(version, action, response):
                found.append((version, action, response))
    return sorted(set(found))


SCHEMAS = all_schemas()


def test_every_official_schema_is_covered() -> None:
    compiled = [s for s in SCHEMAS if schemas.compiled_validator(*s) is not None]
    assert len(SCHEMAS) > 350
    # Only the few schemas with multipleOf (charging profiles) are left to jsonschema.
    assert len(SCHEMAS) - len(compiled) <= 6


@pytest.mark.parametrize(("version", "action", "response"), SCHEMAS, ids=str)
def test_compiled_and_jsonschema_agree(version: OcppVersion, action: str, response: bool) -> None:
    compiled = schemas.compiled_validator(version, action, response)
    if compiled is None:
        pytest.skip("judged by jsonschema only (multipleOf)")
    reference = schemas.validator(version, action, response)
    schema = reference.schema
    assert isinstance(schema, dict)
    rng = random.Random(f"{version}/{action}/{response}")
    verdicts = {True: 0, False: 0}
    for number in range(60):
        chance = 0.0 if number < 15 else 0.06
        payload = Instances(schema, rng, chance).make(schema)
        expected = reference.is_valid(payload)
        verdicts[expected] += 1
        assert compiled.is_valid(payload) == expected, payload
        violation = schemas.validate(version, action, response=response, payload=payload)
        assert (violation is None) == expected, payload
    assert verdicts[True] >= 15  # the conforming ones conform: the generator is right
    assert verdicts[False] > 0 or _cannot_be_broken(schema)


def _cannot_be_broken(schema: Schema) -> bool:
    """A schema with nothing to break but its type (an empty response)."""
    return not schema.get("properties") and not schema.get("required")
