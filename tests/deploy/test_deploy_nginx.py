"""deploy/nginx/: the real nginx accepts the files, the body limit is the service's, and the
errors nginx answers itself are problem bodies in the service's form. Running it in front
of real replicas: tests/integration/test_nginx_balancer.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from nginx_support import MAIN_CONF, MISSING, PROXY_CONF, REPO, check_config, find_nginx, render

from service.errors import PROBLEM_TYPE_BASE, PayloadTooLarge
from service.settings import Settings

_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _directives(name: str) -> list[str]:
    text = PROXY_CONF.read_text() + MAIN_CONF.read_text()
    return re.findall(rf"(?m)^\s*{name}\s+([^;]*);", text)


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    nginx = find_nginx()
    if nginx is None:
        pytest.skip(MISSING)
    # The replicas' names resolve only inside the compose network: nginx -t looks them up.
    conf = render(tmp_path, ["127.0.0.1:18001", "127.0.0.1:18002"], "127.0.0.1:18080")
    result = check_config(nginx, conf)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr


def test_nginx_refuses_a_broken_configuration(tmp_path: Path) -> None:
    """The check above can fail: a directive nginx does not know is reported."""
    nginx = find_nginx()
    if nginx is None:
        pytest.skip(MISSING)
    conf = render(tmp_path, ["127.0.0.1:18001"], "127.0.0.1:18080")
    (tmp_path / "anomaly.conf").write_text(PROXY_CONF.read_text() + "\nproxy_no_such_thing on;\n")
    result = check_config(nginx, conf)
    assert result.returncode != 0
    assert "proxy_no_such_thing" in result.stderr


def _bytes(size: str) -> int:
    match = re.fullmatch(r"(\d+)([kmg]?)", size.strip().lower())
    assert match, size
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def test_the_body_limit_is_the_service_s_default() -> None:
    (limit,) = _directives("client_max_body_size")
    assert _bytes(limit) == Settings.model_fields["max_body_bytes"].default
    mib = _bytes(limit) // 1024**2
    assert f"{mib} MiB" in PROXY_CONF.read_text()
    # No deployment file moves the service's limit away from the balancer's.
    for path in [REPO / "docker-compose.yml", REPO / ".env.example",
                 *(REPO / "deploy" / "kubernetes").glob("*.yaml")]:  # fmt: skip
        for value in re.findall(r"(?m)^\s*ANOMALY_MAX_BODY_BYTES[=:]\s*\"?(\d+)", path.read_text()):
            assert int(value) == _bytes(limit), path.name


def _own_problems() -> dict[int, dict[str, object]]:
    """The body of each `return <status> '<json>'` in anomaly.conf, by status."""
    found = re.findall(r"return (\d{3}) '([^']*)';", PROXY_CONF.read_text())
    return {int(status): json.loads(body) for status, body in found}


def test_nginx_s_own_answers_are_problem_bodies_in_the_service_s_form() -> None:
    problems = _own_problems()
    assert set(problems) == {404, 413, 502, 504}
    for status, problem in problems.items():
        assert set(problem) == {"type", "title", "status", "detail"}, status
        assert problem["status"] == status
        assert str(problem["type"]).startswith(PROBLEM_TYPE_BASE)
    assert problems[413]["type"] == PROBLEM_TYPE_BASE + PayloadTooLarge.slug
    assert problems[413]["title"] == PayloadTooLarge.title
    text = PROXY_CONF.read_text()
    for status, location in re.findall(r"error_page (\d{3}) (@\w+);", text):
        block = text.split(f"location {location} {{", 1)[1].split("}", 1)[0]
        assert "default_type application/problem+json;" in block
        assert f"return {status} '" in block


def test_only_an_unreachable_replica_hands_a_request_on() -> None:
    """A 503 from the service is its answer for every replica (a dependency down): counting
    it as a failure would mark them all failed. And a POST already sent is never resent."""
    for value in _directives("proxy_next_upstream"):
        assert set(value.split()) <= {"error", "timeout"}, value
    assert "proxy_intercept_errors on" not in PROXY_CONF.read_text()
