"""Dockerfile, .dockerignore, docker-compose.yml and .env.example (Docker's engine does not
run here: the files are linted, schema-checked and cross-checked with the Settings class)."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from nginx_support import MAIN_CONF as NGINX_CONF
from promql_support import REPO
from settings_support import KNOWN_ENV

from service.settings import Settings

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
VENV_BIN = Path(sys.executable).parent


def _venv_tool(name: str) -> str:
    path = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.skip(f"{name} is not installed (dev extra; scripts/install installs it)")
    return path


def _stages(text: str) -> list[str]:
    """The Dockerfile split at each FROM, line continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return re.split(r"(?m)^FROM ", joined)[1:]


# --- Dockerfile ------------------------------------------------------------------------


def test_hadolint_passes_with_no_findings() -> None:
    hadolint = _venv_tool("hadolint")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_dockerfile_is_multi_stage_with_cpu_torch_and_a_slim_non_root_runtime() -> None:
    builder, runtime = _stages(DOCKERFILE.read_text())
    assert builder.startswith("python:${PYTHON_VERSION}-slim AS builder")
    # torch alone, CPU-only, from the TORCH_WHEELS build argument: PyTorch's CPU index unless
    # a build points it at local wheels (tests/integration/test_container_image.py does).
    assert re.search(
        r"(?m)^ARG TORCH_WHEELS=https://download\.pytorch\.org/whl/cpu/torch/$", builder
    )
    assert (
        'pip install --no-cache-dir --no-index --no-deps --find-links "$TORCH_WHEELS" torch==2.13.0'
        in builder
    )
    assert runtime.startswith("python:${PYTHON_VERSION}-slim AS runtime")
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    assert "pip install" not in runtime, "the runtime stage installs nothing"
    user = re.search(r"(?m)^USER (\S+)", runtime)
    assert user and user.group(1).split(":")[0] not in {"0", "root"}
    assert re.search(r"(?m)^CMD \[\"python\", \"-m\", \"service\"\]$", runtime)
    assert "--workers" not in DOCKERFILE.read_text()


def test_pip_build_arguments_are_unset_by_default_and_stay_in_the_builder() -> None:
    """A mirror, extra index or CA bundle can be passed to the build's pip; none is set unless
    passed, and none reaches the runtime image (a build argument is part of its history)."""
    builder, runtime = _stages(DOCKERFILE.read_text())
    declared = re.findall(r"(?m)^ARG (PIP_\w+)(=?)", builder)
    assert {name for name, _ in declared} == {
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "PIP_CERT",
    }
    assert all(equals == "" for _, equals in declared), "no default: pip's own unless passed"
    assert not re.search(r"(?m)^ARG ", runtime)


def _runtime_env() -> dict[str, str]:
    runtime = _stages(DOCKERFILE.read_text())[1]
    env_line = re.search(r"(?m)^ENV (.*)$", runtime)
    assert env_line
    return dict(re.findall(r"(\w+)=(\S+)", env_line.group(1)))


def test_dockerfile_settings_are_real_settings_and_point_at_the_volume_and_models() -> None:
    env = _runtime_env()
    anomaly = {k: v for k, v in env.items() if k.startswith("ANOMALY_")}
    fields = {f"ANOMALY_{name.upper()}" for name in Settings.model_fields}
    assert set(anomaly) <= fields
    settings = Settings.model_validate(
        {k.removeprefix("ANOMALY_").lower(): v for k, v in anomaly.items()}
    )
    assert settings.host == "0.0.0.0" and settings.port == 8000
    runtime = _stages(DOCKERFILE.read_text())[1]
    volume = re.search(r'(?m)^VOLUME \["([^"]+)"\]', runtime)
    assert volume and settings.store_path.parent == Path(volume.group(1))
    assert f"COPY models/ {settings.models_dir}/" in runtime
    assert f"EXPOSE {settings.port}" in runtime


def test_dockerignore_sends_only_what_the_image_needs() -> None:
    lines = [
        line for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]  # fmt: skip
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!service/", "!models/"} <= set(lines)
    sources = [
        source
        for args in re.findall(r"(?m)^COPY (?!--from)(.*)$", DOCKERFILE.read_text())
        for source in [a for a in args.split() if not a.startswith("--")][:-1]
    ]
    assert {"pyproject.toml", "README.md", "service/", "models/"} <= set(sources)
    for source in sources:
        assert f"!{source}" in lines, f"{source} is copied but .dockerignore leaves it out"


class _ReadyzHandler(http.server.BaseHTTPRequestHandler):
    ready = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status = 200 if self.path == "/readyz" and type(self).ready else 503
        self.send_response(status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture
def readyz_server() -> Iterator[tuple[int, type[_ReadyzHandler]]]:
    handler = type("Handler", (_ReadyzHandler,), {"ready": True})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _healthcheck_exit(command: list[str], port: int) -> int:
    env = {**os.environ, "ANOMALY_PORT": str(port)}
    program = command[command.index("-c") + 1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    return subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, timeout=30
    ).returncode


def test_the_image_and_compose_healthchecks_pass_on_ready_and_fail_on_503(
    readyz_server: tuple[int, type[_ReadyzHandler]],
) -> None:
    """The healthcheck commands, run as written, against a server that is ready, then not."""
    port, handler = readyz_server
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    image_cmd = yaml.safe_load(re.search(r"(?m)^HEALTHCHECK .*? CMD (\[.*\])$", joined).group(1))  # type: ignore[union-attr]
    compose_cmd = yaml.safe_load(COMPOSE.read_text())["services"]["service"]["healthcheck"]["test"]
    for command in (image_cmd, compose_cmd):
        assert command[0] in {"python", "CMD"} and "/readyz" in " ".join(command)
        command = command[1:] if command[0] == "CMD" else command
        handler.ready = True
        assert _healthcheck_exit(command, port) == 0
        handler.ready = False
        assert _healthcheck_exit(command, port) != 0


# --- docker-compose.yml ------------------------------------------------------------------


DEFAULT_SERVICES = {"service", "prometheus", "alertmanager", "grafana"}
REPLICAS = {"replica-1", "replica-2", "replica-3"}
HA_SERVICES = REPLICAS | {"nginx", "postgres", "redis"}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _default_services() -> dict[str, Any]:
    """What `docker compose up` runs: the services in no profile."""
    return {k: v for k, v in _compose()["services"].items() if "profiles" not in v}


def test_compose_file_matches_the_compose_spec_schema() -> None:
    check = _venv_tool("check-jsonschema")
    result = subprocess.run(
        [check, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _env_project(tmp_path: Path, password: str) -> Path:
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    env = ENV_EXAMPLE.read_text().replace(
        "\nGRAFANA_ADMIN_PASSWORD=\n", f"\nGRAFANA_ADMIN_PASSWORD={password}\n"
    )
    env = env.replace("\nPOSTGRES_PASSWORD=\n", "\nPOSTGRES_PASSWORD=a-long-postgres-password\n")
    (tmp_path / ".env").write_text(env)
    return tmp_path


def test_docker_compose_config_accepts_the_file_with_the_example_env(tmp_path: Path) -> None:
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        pytest.skip("docker-compose is not installed (Debian package; .ci/run installs it)")
    project = _env_project(tmp_path, "a-long-grafana-password")
    result = subprocess.run(
        [docker_compose, "config"], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    resolved = yaml.safe_load(result.stdout)
    # docker-compose 1.x lists every profile's services in `config`; the default ones are
    # those in no profile.
    services = resolved["services"]
    assert {k for k, v in services.items() if not v.get("profiles")} == DEFAULT_SERVICES
    assert {k for k, v in services.items() if v.get("profiles") == ["ha"]} == HA_SERVICES
    grafana_env = services["grafana"]["environment"]
    assert grafana_env["GF_SECURITY_ADMIN_PASSWORD"] == "a-long-grafana-password"
    # The replicas reach PostgreSQL with the password the postgres container is given.
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password == "a-long-postgres-password"
    for replica in REPLICAS:
        url = services[replica]["environment"]["ANOMALY_STORE_URL"]
        assert url == f"postgresql://anomaly:{password}@postgres:5432/anomaly"
    (tmp_path / "no-password").mkdir()
    refused = subprocess.run(
        [docker_compose, "config"],
        cwd=_env_project(tmp_path / "no-password", ""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in refused.stderr


def test_compose_has_the_four_services_with_healthchecks_and_ordered_start() -> None:
    services = _default_services()
    assert set(services) == DEFAULT_SERVICES
    every = _compose()["services"]
    for name, service in every.items():
        assert service["healthcheck"]["test"], name
        assert service.get("restart") == "unless-stopped", name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in every
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in every[dependency]
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert services["prometheus"]["depends_on"]["alertmanager"]["condition"] == "service_healthy"
    # Prometheus must run while the service is unhealthy, to report it.
    assert services["prometheus"]["depends_on"]["service"]["condition"] == "service_started"
    # The default stack never waits on, or starts, a service of a profile.
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= DEFAULT_SERVICES, name


def test_the_ha_profile_runs_replicas_behind_nginx_on_postgres_and_redis() -> None:
    services = _compose()["services"]
    for name in HA_SERVICES:
        assert services[name]["profiles"] == ["ha"], name
    single = services["service"]
    replicas = [services[name] for name in sorted(REPLICAS)]
    for replica in replicas:
        assert replica == replicas[0], "the replicas differ only in their names"
    replica = replicas[0]
    assert replica["image"] == single["image"] and replica["build"] == single["build"]
    assert replica["env_file"] == single["env_file"] == ".env"
    assert replica["healthcheck"] == single["healthcheck"]
    assert replica["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    env = replica["environment"]
    assert env["ANOMALY_STORE_URL"].startswith("postgresql://anomaly:${POSTGRES_PASSWORD")
    assert env["ANOMALY_STORE_URL"].endswith("@postgres:5432/anomaly")
    assert env["ANOMALY_REDIS_URL"] == "redis://redis:6379/0"
    assert "ANOMALY_STORE_PATH" not in env and "volumes" not in replica
    postgres = services["postgres"]["environment"]
    assert postgres["POSTGRES_USER"] == postgres["POSTGRES_DB"] == "anomaly"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "noeviction" in services["redis"]["command"]


def test_nginx_balances_exactly_the_replicas_on_the_port_they_serve() -> None:
    services = _compose()["services"]
    nginx = services["nginx"]
    conf = NGINX_CONF.read_text()
    upstreams = re.findall(r"(?m)^\s*server ([\w-]+):(\d+)", conf)
    port = services["replica-1"]["environment"]["ANOMALY_PORT"]
    assert sorted(upstreams) == [(name, port) for name in sorted(REPLICAS)]
    assert set(nginx["depends_on"]) == REPLICAS
    (listen,) = re.findall(r"(?m)^\s*listen (\d+);", conf)
    (published,) = nginx["ports"]
    assert published.endswith(f":{listen}")
    assert listen in " ".join(nginx["healthcheck"]["test"])
    # Not the single service's host port: both stacks may be defined side by side.
    assert "${HA_PORT" in published and "${SERVICE_PORT" not in published
    mounts = dict(v.split(":")[:2] for v in nginx["volumes"])
    assert mounts == {
        "./deploy/nginx/nginx.conf": "/etc/nginx/nginx.conf",
        # nginx.conf includes it by a path relative to its own folder.
        "./deploy/nginx/anomaly.conf": "/etc/nginx/anomaly.conf",
    }
    assert "include anomaly.conf;" in conf


def test_every_anomaly_variable_in_compose_is_a_setting() -> None:
    named = set(re.findall(r"\b(ANOMALY_[A-Z0-9_]+)\b", COMPOSE.read_text()))
    assert named, "compose sets the service's settings"
    assert named <= KNOWN_ENV, sorted(named - KNOWN_ENV)


def test_compose_volumes_are_named_and_bind_mounts_exist_in_the_repository() -> None:
    compose = _compose()
    declared = set(compose["volumes"])
    used: set[str] = set()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                assert (REPO / source).exists(), source
                assert volume.endswith(":ro"), f"{volume} should be read-only"
            else:
                assert source in declared, source
                used.add(source)
    assert used == declared
    for name, service in compose["services"].items():
        if service.get("read_only"):
            # The nginx and replica containers run on a read-only root; what they write
            # goes to a tmpfs (nginx.conf keeps all of nginx's files under /tmp).
            assert service["tmpfs"] == ["/tmp"], name
    store = compose["services"]["service"]["environment"]["ANOMALY_STORE_PATH"]
    assert "feedback-data:" + str(Path(store).parent) in compose["services"]["service"]["volumes"]


def test_compose_mounts_the_rules_and_configs_where_the_configs_expect_them() -> None:
    prometheus = _compose()["services"]["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    assert mounts["./deploy/prometheus/rules"] == "/etc/prometheus/rules"
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    alertmanager = _compose()["services"]["alertmanager"]
    assert (
        "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
        in (alertmanager["volumes"])
    )


def test_compose_secrets_come_from_the_env_file_and_every_variable_is_documented() -> None:
    compose_text = COMPOSE.read_text()
    assert _compose()["services"]["service"]["env_file"] == ".env"
    interpolated = set(re.findall(r"\$\{(\w+)", compose_text))
    documented = set(re.findall(r"(?m)^#?\s*(\w+)=", ENV_EXAMPLE.read_text()))
    assert interpolated <= documented, sorted(interpolated - documented)
    assert "GF_SECURITY_ADMIN_PASSWORD: ${GRAFANA_ADMIN_PASSWORD:?" in compose_text


# --- .env.example ----------------------------------------------------------------------


def _env_example_assignments() -> tuple[dict[str, str], dict[str, str]]:
    """(active, commented-out) assignments in .env.example."""
    active: dict[str, str] = {}
    commented: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            (commented if match.group(1) else active)[match.group(2)] = match.group(3)
    return active, commented


def test_env_example_names_only_real_settings_and_its_values_validate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    active, commented = _env_example_assignments()
    fields = {f"ANOMALY_{name.upper()}" for name in Settings.model_fields}
    for name in [*active, *commented]:
        if name.startswith("ANOMALY_"):
            assert name in fields, name
    # The commented key list, with real hashes put in, is what an operator ends up with.
    example_hash = hashlib.sha256(b"an-operator-generated-key-0123456789abcdef").hexdigest()
    keys = commented["ANOMALY_API_KEYS"].replace("<hash>", example_hash)
    for name in list(os.environ):
        if name.startswith("ANOMALY_"):
            monkeypatch.delenv(name)
    for name, value in active.items():
        if name.startswith("ANOMALY_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("ANOMALY_API_KEYS", keys)
    settings = Settings()
    assert settings.env == "production"
    assert {key.name for key in settings.api_keys} == {"scorer", "operator", "admin"}
    assert {scope for key in settings.api_keys for scope in key.scopes} == {
        "score",
        "feedback",
        "admin",
    }


def test_env_example_holds_no_secret() -> None:
    active, _ = _env_example_assignments()
    assert active["GRAFANA_ADMIN_PASSWORD"] == ""
    assert "ANOMALY_API_KEYS" not in active
    assert not re.search(r"[0-9a-f]{64}", ENV_EXAMPLE.read_text())
    assert ".env" in (REPO / ".gitignore").read_text().split()
