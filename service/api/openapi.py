"""What the OpenAPI document promises: who may call each operation, every refusal it can
answer (as ``application/problem+json``), and the bounds that depend on the models served.

Generated clients, Swagger UI's "Try it out" and schema-driven fuzzers read it; the access
rules are read from the routes' own dependencies, so the document cannot drift from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from service.calibration.keeper import MANUAL_RANGE
from service.errors import PROBLEM_CONTENT_TYPE
from service.scoring.registry import LoadedModel
from service.scoring.thresholds import ThresholdBoard
from service.security import SCOPES, require_scope
from service.settings import Settings

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key as `Authorization: Bearer <key>`.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same key as `X-API-Key: <key>`.",
    },
}
KEYED: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
REFUSALS = {
    "400": "The body is not valid JSON.",
    "401": "No API key, or an unknown one.",
    "403": "The key lacks the scope this operation needs.",
    "404": "Not found.",
    "413": "The body is larger than the configured limit.",
    "415": "The body is not JSON.",
    "422": "A parameter or the body failed validation.",
    "503": "Not ready: starting, stopping, or no model served (see /readyz).",
}
ALWAYS_ANSWERED = frozenset({"/healthz"})
"""Operations that never refuse: everything else can answer 503 while the service is not
ready (no model loaded, or during start-up and shutdown)."""


def problems(**described: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: ``problems(s404="No such model.")``; the content type and
    schema are filled in by :func:`document_refusals`."""
    return {name.removeprefix("s"): {"description": text} for name, text in described.items()}


def scope_checks(dependant: Dependant) -> list[require_scope]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, require_scope)]
    for sub in dependant.dependencies:
        found.extend(scope_checks(sub))
    return found


def document_access(
    schema: dict[str, Any], routes: Iterable[BaseRoute], settings: Settings
) -> None:
    """Security schemes (the Authorize button in /docs), each keyed operation's requirement,
    and its 401/403: a key is checked wherever one is presented, required where the settings
    say, and a 403 is possible only where some scope does not suffice."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    paths = schema.get("paths", {})
    for route in iter_route_contexts(list(routes)):
        dependant = getattr(route, "dependant", None)
        if not isinstance(dependant, Dependant) or not getattr(route, "include_in_schema", True):
            continue
        checks = scope_checks(dependant)
        if not checks:
            continue
        required = any(check.required(settings) for check in checks)
        narrowed = [check for check in checks if check.scopes != frozenset(SCOPES)]
        for method in route.methods or ():
            operation = paths.get(route.path_format or "", {}).get(method.lower())
            if operation is None:
                continue
            operation["security"] = KEYED if required else [{}, *KEYED]
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", {"description": REFUSALS["401"]})
            if narrowed:
                needed = " and ".join(" or ".join(sorted(c.scopes)) for c in narrowed)
                responses.setdefault("403", {"description": f"The key lacks the {needed} scope."})


def document_refusals(schema: dict[str, Any], *, json_only_prefixes: tuple[str, ...]) -> None:
    """Every refusal is a Problem served as ``application/problem+json`` (FastAPI declares
    its own 422 shape as application/json); an operation with a body can be refused for bad
    JSON, size or (under ``json_only_prefixes``, where the request guard checks it) media
    type; every operation but liveness can be refused while the service is not ready."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            added: tuple[str, ...] = () if path in ALWAYS_ANSWERED else ("503",)
            if "requestBody" in operation:
                added += ("400", "413")
                if path.startswith(json_only_prefixes):
                    added += ("415",)
            for status in added:
                responses.setdefault(status, {"description": REFUSALS[status]})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def float32_ceiling(bound: np.float32) -> float:
    """The largest number whose float32 is at most ``bound``: the service compares readings
    after their conversion to float32, so a value up to half a float32 step above the bound
    is within it, and the schema's ``maximum`` says exactly that (ties round to even)."""
    above = np.nextafter(bound, np.float32(np.inf))
    middle = (float(bound) + float(above)) / 2  # exact in float64
    even = int(np.asarray(bound, dtype=np.float32).view(np.uint32)) % 2 == 0
    return middle if even else float(np.nextafter(middle, -np.inf))


def document_readings(schema: dict[str, Any], models: Sequence[LoadedModel]) -> None:
    """A reading's values as the served models take them: a list of exactly their number
    of sensors, or an object naming every sensor of one of them and nothing else, each value
    within the sensor's reach (``service.scoring.registry.VALUE_REACH``)."""
    components = schema.get("components", {}).get("schemas", {})
    request, wrapped = components.get("ScoreRequest"), components.get("ReadingIn")
    if not models or request is None or wrapped is None:
        return
    lists: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    for model in models:
        numbers = [
            {"type": "number", "minimum": -float32_ceiling(-low), "maximum": float32_ceiling(high)}
            for low, high in zip(model.value_low, model.value_high, strict=True)
        ]
        n = len(numbers)
        same = all(number == numbers[0] for number in numbers)
        per_position = {"items": numbers[0]} if same else {"prefixItems": numbers}
        listed = {"type": "array", **per_position, "minItems": n, "maxItems": n}
        if listed not in lists:
            lists.append(listed)
        objects.append(
            {
                "type": "object",
                "properties": dict(zip(model.sensors, numbers, strict=True)),
                "required": list(model.sensors),
                "additionalProperties": False,
            }
        )
    bare = lists[0] if len(lists) == 1 else {"anyOf": lists}
    wrapped["properties"]["values"]["anyOf"] = [*lists, *objects]
    request["properties"]["reading"]["anyOf"][0] = bare
    request["properties"]["readings"]["anyOf"][0]["items"]["anyOf"][0] = bare


def document_threshold_bounds(
    schema: dict[str, Any], thresholds: ThresholdBoard, model_names: Iterable[str]
) -> None:
    """A hand-set threshold must lie within a factor ``MANUAL_RANGE`` of its model's
    training baseline: the served models' bounds (their union when there are several, each
    model still holding to its own) become the body schema's minimum and maximum."""
    baselines = [thresholds.get(name).baseline for name in model_names if name in thresholds]
    value = (
        schema.get("components", {})
        .get("schemas", {})
        .get("SetThreshold", {})
        .get("properties", {})
        .get("value")
    )
    if not baselines or value is None:
        return
    value.pop("exclusiveMinimum", None)
    value["minimum"] = min(baselines) / MANUAL_RANGE
    value["maximum"] = max(baselines) * MANUAL_RANGE
