"""The image's runtime layout without Docker's engine (it does not run on these machines).

What the Dockerfile does, done by hand: the build context as .dockerignore filters it is built
into a wheel and installed (not editable) into a fresh virtual environment; the service then
runs from outside the repository with the runtime stage's ANOMALY_* environment, the bundled
models copied as the image copies them, and a key (production mode); the HEALTHCHECK command,
run as written, turns healthy; the bundled model scores a stream's readings once its window is
full. Third-party
dependencies come from the project's venv (a .pth line) instead of being downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest
from promql_support import REPO

DOCKERFILE = REPO / "Dockerfile"
KEY = "image-layout-7c1e4b9a2f6d8e0c3a5b7d9f1e2c4a6b"


def _build_context(destination: Path) -> Path:
    """Copy what .dockerignore lets through (its form: ``*`` then ``!path`` exceptions)."""
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "the test understands a deny-all .dockerignore with exceptions"
    destination.mkdir(parents=True)
    excluded_names = {"__pycache__"}
    for line in lines[1:]:
        if line.startswith("!"):
            source = REPO / line[1:].rstrip("/")
            target = destination / line[1:].rstrip("/")
            if source.is_dir():
                shutil.copytree(
                    source, target, ignore=shutil.ignore_patterns(*excluded_names, "*.pyc")
                )
            else:
                shutil.copy2(source, target)
        else:
            assert line in {"**/__pycache__/", "**/*.pyc"}, f"unexpected pattern {line}"
    return destination


def _runtime_env() -> dict[str, str]:
    runtime = re.split(r"(?m)^FROM ", re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text()))[-1]
    env_line = re.search(r"(?m)^ENV (.*)$", runtime)
    assert env_line
    return dict(re.findall(r"(\w+)=(\S+)", env_line.group(1)))


def _healthcheck_program() -> str:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    command = json.loads(re.search(r"(?m)^HEALTHCHECK .*? CMD (\[.*\])$", joined).group(1))  # type: ignore[union-attr]
    assert command[:2] == ["python", "-c"]
    program: str = command[2]
    return program


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the project installed from the filtered build context."""
    root = tmp_path_factory.mktemp("image")
    context = _build_context(root / "context")
    wheels = root / "wheels"
    # Build with the venv's setuptools when it has one (offline); else pip fetches the
    # build backend pyproject.toml names, as `docker build` would.
    offline = importlib.util.find_spec("setuptools") is not None
    options = ["--no-build-isolation", "--no-index"] if offline else []
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *options, "-q", "-w", str(wheels),
         str(context)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # Dependencies from the project's venv, after the fresh site-packages in sys.path.
    Path(site, "zz_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = wheels.glob("*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    return venv


def _image_env(venv: Path, app: Path, port: int, **extra: str) -> dict[str, str]:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(app)}
    for name, value in _runtime_env().items():
        env[name] = value.replace("$PATH", env["PATH"]).replace("/opt/venv", str(venv))
    # The image's absolute paths, moved under the test's folder.
    env["ANOMALY_MODELS_DIR"] = str(app / "models")
    env["ANOMALY_STORE_PATH"] = str(app.parent / "var" / "feedback.sqlite3")
    env["ANOMALY_HOST"] = "127.0.0.1"
    env["ANOMALY_PORT"] = str(port)
    env.update(extra)
    return env


def test_installed_package_runs_the_bundled_model_with_the_image_environment(
    image_venv: Path, tmp_path: Path
) -> None:
    python = image_venv / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import service; print(service.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert where.startswith(str(image_venv)), f"not the installed copy: {where}"

    app = tmp_path / "app"
    app.mkdir()
    (tmp_path / "var").mkdir()
    runtime = re.split(r"(?m)^FROM ", DOCKERFILE.read_text())[-1]
    assert "COPY models/ /app/models/" in runtime
    shutil.copytree(REPO / "models", app / "models", ignore=shutil.ignore_patterns("__pycache__"))
    assert _runtime_env()["ANOMALY_ENV"] == "production"

    port = _free_port()
    refused = subprocess.run(
        [str(python), "-m", "service"],
        env=_image_env(image_venv, app, port), cwd=app,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "production mode needs API keys" in refused.stdout + refused.stderr

    keys = json.dumps(
        [
            {
                "name": "ops",
                "scopes": ["score"],
                "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
            }
        ]
    )
    env = _image_env(image_venv, app, port, ANOMALY_API_KEYS=keys, ANOMALY_REQUIRE_SCORE_KEY="true")
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(python), "-m", "service"], env=env, cwd=app, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        program = _healthcheck_program()
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text()
            check = subprocess.run(
                [str(python), "-c", program], env=env, capture_output=True, timeout=30
            )
            if check.returncode == 0:
                break
            assert time.monotonic() < deadline, "HEALTHCHECK never passed:\n" + log.read_text()
            time.sleep(0.5)
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            models = client.get("/v1/models", headers=headers).json()
            bundled = next(m for m in models["models"] if m["default"])
            readings = [[0.0] * bundled["n_sensors"]] * bundled["window"]
            scored = client.post(
                "/v1/score", json={"stream_id": "image", "readings": readings}, headers=headers
            )
            assert scored.status_code == 200, scored.text
            assert scored.json()["model"] == bundled["name"]
            assert scored.json()["results"][-1]["status"] == "scored"
            reading = readings[0]
            assert (
                client.post(
                    "/v1/score", json={"stream_id": "image", "reading": reading}
                ).status_code
                == 401
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert Path(env["ANOMALY_STORE_PATH"]).exists(), "the store lives on the volume path"
