"""Access control on every route: the route table is enumerated, so a new route that forgets
its scope fails here instead of shipping unprotected."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from calibration_support import ADMIN, ADMIN_KEY, API_KEYS, OPERATOR, OPERATOR_KEY, SCORER
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from service.app import create_app
from service.security import InsecureConfiguration, require_scope
from service.settings import Settings

# Routes anyone may call: probes, metrics scraping and the API documentation.
PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/docs-assets",  # Swagger UI's and ReDoc's files
    # The console's static page and files: everything it shows comes through the keyed API.
    "/console",  # the page, and the mount of everything under /console
}
KEY_FOR_SCOPE = {
    "admin": ADMIN,
    "feedback": OPERATOR,
    "score": SCORER,
}


def scope_requirements(dependant: Dependant) -> list[require_scope]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, require_scope)]
    for sub in dependant.dependencies:
        found.extend(scope_requirements(sub))
    return found


def concrete(path: str) -> str:
    """Fill path parameters: ids get a number, names a word."""
    return re.sub(r"\{(\w+)\}", lambda m: "1" if m.group(1).endswith("id") else "x", path)


def route_table(app: FastAPI) -> Iterator[tuple[str, set[str], Dependant | None]]:
    """Every (path, methods, dependant), looking inside included routers."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                yield context.path, set(context.methods or ()), context.dependant
        elif isinstance(route, APIRoute):
            yield route.path, set(route.methods), route.dependant
        else:
            # A mount, or a route to an ASGI app, has no method list (None): it takes any.
            methods = getattr(route, "methods", None) or ()
            yield getattr(route, "path", repr(route)), set(methods), None


def protected_routes(settings: Settings) -> list[tuple[str, str, frozenset[str]]]:
    app = create_app(settings)
    routes = []
    seen: set[tuple[str, str]] = set()
    for path, methods, dependant in route_table(app):
        seen.update((m, path) for m in methods)
        if path in PUBLIC:
            continue
        assert dependant is not None, f"route {path} is not an API route and not public"
        requirements = [r for r in scope_requirements(dependant) if r.required(settings)]
        assert requirements, f"{sorted(methods)} {path} has no scope requirement"
        for method in methods:
            routes.append((method, path, requirements[0].scopes))
    # The table walk must see every operation the OpenAPI document advertises.
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            assert (method.upper(), path) in seen, f"{method} {path} missed by the route walk"
    return routes


STRICT = {"api_keys": API_KEYS, "require_score_key": True}


def test_every_non_public_route_declares_a_scope() -> None:
    routes = protected_routes(Settings(**STRICT))
    paths = {path for _, path, _ in routes}
    assert {"/v1/score", "/v1/feedback", "/v1/admin/thresholds", "/v1/drift"} <= paths
    assert len(routes) >= 15


async def test_every_protected_route_refuses_no_key_unknown_key_and_wrong_scope(
    make_client: Any,
) -> None:
    client = await make_client(**STRICT)
    routes = protected_routes(Settings(**STRICT))
    for method, path, scopes in routes:
        url = concrete(path)
        kwargs: dict[str, Any] = {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}
        anonymous = await client.request(method, url, **kwargs)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.json()["type"].endswith("/unauthenticated")
        unknown = await client.request(
            method, url, headers={"Authorization": "Bearer not-a-key-" + "0" * 30}, **kwargs
        )
        assert unknown.status_code == 401, (method, path)
        for scope, headers in KEY_FOR_SCOPE.items():
            if scope in scopes:
                continue
            wrong = await client.request(method, url, headers=headers, **kwargs)
            assert wrong.status_code == 403, (method, path, scope, wrong.text)
            assert wrong.json()["type"].endswith("/forbidden")
            assert scope not in wrong.json()["detail"] or "lacks" in wrong.json()["detail"]
        allowed = KEY_FOR_SCOPE[sorted(scopes)[0]]
        passed = await client.request(method, url, headers=allowed, **kwargs)
        assert passed.status_code not in {401, 403}, (method, path, passed.text)


async def test_scoring_is_open_unless_configured(make_client: Any) -> None:
    open_client = await make_client(api_keys=API_KEYS)
    body = {"stream_id": "a", "reading": [0.1, 0.2, 0.3, 0.4]}
    assert (await open_client.post("/v1/score", json=body)).status_code == 200
    assert (await open_client.get("/v1/models")).status_code == 200
    # A presented key is still checked: a typo never silently runs as anonymous.
    typo = await open_client.post("/v1/score", json=body, headers={"X-API-Key": "typo"})
    assert typo.status_code == 401
    # Feedback and admin always need a key, even when scoring does not.
    assert (await open_client.get("/v1/feedback")).status_code == 401
    assert (await open_client.post("/v1/admin/models/reload")).status_code == 401
    strict = await make_client(**STRICT)
    assert (await strict.post("/v1/score", json=body)).status_code == 401
    assert (await strict.post("/v1/score", json=body, headers=SCORER)).status_code == 200
    # A key that may label or administer may score what it labels.
    assert (await strict.post("/v1/score", json=body, headers=OPERATOR)).status_code == 200
    assert (await strict.post("/v1/score", json=body, headers=ADMIN)).status_code == 200


async def test_without_keys_configured_the_refusal_says_how_to_configure_them(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Development mode starts without keys; feedback and admin then refuse every caller,
    and saying only "send a key" would send a first-day user looking for one."""
    with caplog.at_level("WARNING", logger="service.security"):
        keyless = await make_client(api_keys=[])
    assert "no API keys configured" in caplog.text
    for headers in ({}, {"Authorization": "Bearer some-key"}):
        refused = await keyless.get("/v1/feedback", headers=headers)
        assert refused.status_code == 401
        assert "ANOMALY_API_KEYS" in refused.json()["detail"]
    keyed = await make_client(api_keys=API_KEYS)
    assert "ANOMALY_API_KEYS" not in (await keyed.get("/v1/feedback")).json()["detail"]
    # scoring takes requests without a key here: a key sent is what cannot be checked
    body = {"stream_id": "a", "reading": [0.1, 0.2, 0.3, 0.4]}
    assert (await keyless.post("/v1/score", json=body)).status_code == 200
    keyed_score = await keyless.post("/v1/score", json=body, headers={"X-API-Key": "k"})
    assert keyed_score.status_code == 401
    assert "send the request without one" in keyed_score.json()["detail"]


async def test_production_is_closed_by_default(make_client: Any) -> None:
    """With only admin and feedback keys in production, anonymous callers can neither score
    (moving any stream's alert state) nor read streams or model details; opening scoring
    is an explicit setting."""
    body = {"stream_id": "a", "reading": [0.1, 0.2, 0.3, 0.4]}
    keys = [k for k in API_KEYS if "score" not in k["scopes"]]
    closed = await make_client(env="production", api_keys=keys)
    assert (await closed.post("/v1/score", json=body)).status_code == 401
    assert (await closed.get("/v1/models")).status_code == 401
    assert (await closed.get("/v1/streams/a")).status_code == 401
    assert (await closed.post("/v1/score", json=body, headers=OPERATOR)).status_code == 200
    detail = (await closed.get("/v1/models/test-plant", headers=OPERATOR)).json()
    assert detail["path"] == "test-plant/1"  # no absolute server path in replies
    opened = await make_client(env="production", api_keys=keys, require_score_key=False)
    assert (await opened.post("/v1/score", json=body)).status_code == 200
    development = await make_client(api_keys=keys)
    assert (await development.post("/v1/score", json=body)).status_code == 200


async def test_both_header_forms_are_accepted(make_client: Any) -> None:
    client = await make_client(api_keys=API_KEYS)
    bearer = await client.get("/v1/feedback", headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    x_api = await client.get("/v1/feedback", headers={"X-API-Key": OPERATOR_KEY})
    assert bearer.status_code == x_api.status_code == 200
    basic = await client.get("/v1/feedback", headers={"Authorization": f"Basic {OPERATOR_KEY}"})
    assert basic.status_code == 401


async def test_the_key_name_is_the_author(make_client: Any) -> None:
    client = await make_client(api_keys=API_KEYS)
    response = await client.post(
        "/v1/feedback",
        json={"label": "normal", "readings": {"values": [[0.1, 0.2, 0.3, 0.4]]}},
        headers={"X-API-Key": ADMIN_KEY},
    )
    assert response.status_code == 403  # admin does not imply feedback: scopes are explicit
    response = await client.post(
        "/v1/feedback",
        json={"label": "normal", "readings": {"values": [[0.1, 0.2, 0.3, 0.4]]}},
        headers=OPERATOR,
    )
    assert response.status_code == 201
    assert response.json()["author"] == "olga-operator"


def test_production_mode_refuses_to_start_without_safe_keys() -> None:
    with pytest.raises(InsecureConfiguration):
        create_app(Settings(env="production"))
    weak = [{"name": "ops", "scopes": ["admin"], "key": "changeme"}]
    with pytest.raises(InsecureConfiguration, match="weak"):
        create_app(Settings(env="production", api_keys=weak))
    assert create_app(Settings(env="production", api_keys=API_KEYS)) is not None
