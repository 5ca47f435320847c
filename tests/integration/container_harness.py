"""The Dockerfile built and run for real with podman, no Docker daemon or Docker Hub needed.

- podman reads a containers.conf written here (``CONTAINERS_CONF``), so nothing on the host
  changes: runc as the runtime, cgroupfs, and no default ulimits (raising them is refused
  inside these machines' sandboxes).
- The Dockerfile's base (``python:<PYTHON_VERSION>-slim``), when no image of that name is
  present, is assembled from Debian packages with mmdebstrap and tagged locally under that
  name: Debian's python3 of the matching release, with venv and a ``python`` command.
- The build uses this machine's pip sources: the torch wheel the host's pip finds without an
  index (``TORCH_WHEELS``, PyTorch's CPU index when there is none), and the host's pip index,
  extra indexes, find-links and CA bundle as the Dockerfile's ``PIP_*`` build arguments, local
  paths bind-mounted read-only into the build (nothing of them lands in a layer).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"

# The Debian release whose python3 is each Python version the Dockerfile may name.
DEBIAN_SUITES = {"3.11": "bookworm", "3.13": "trixie"}
DEBIAN_PACKAGES = "podman, buildah, runc, mmdebstrap"

CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"

[engine.runtimes]
runc = ["{runc}"]
"""

# pip settings the Dockerfile declares as build arguments (pip reads them from the environment).
PIP_SETTINGS = ("index-url", "extra-index-url", "find-links", "cert")


def missing_programs() -> list[str]:
    programs = ("podman", "runc", "mmdebstrap")
    return [name for name in programs if find_program(name) is None]


def find_program(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def base_image() -> tuple[str, str]:
    """(the base image's full name, its Python version), from the Dockerfile."""
    text = DOCKERFILE.read_text()
    version = re.search(r"(?m)^ARG PYTHON_VERSION=(\S+)$", text)
    assert version, "the Dockerfile sets PYTHON_VERSION"
    froms = set(re.findall(r"(?m)^FROM (\S+)", text))
    assert froms == {"python:${PYTHON_VERSION}-slim"}, froms
    return f"docker.io/library/python:{version.group(1)}-slim", version.group(1)


@dataclass
class Podman:
    """podman with this harness's containers.conf; every call bounded by a timeout."""

    conf: Path
    log: Path
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        runc = find_program("runc")
        assert runc is not None
        self.conf.write_text(CONTAINERS_CONF.format(runc=runc))
        self.env = {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def run(
        self, *args: str, timeout: float = 120, check: bool = True, stdin: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=stdin,
        )
        with self.log.open("a") as sink:
            sink.write(f"$ podman {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        if check:
            assert result.returncode == 0, f"podman {args[0]} failed:\n{result.stderr[-4000:]}"
        return result

    def image_exists(self, name: str) -> bool:
        return self.run("image", "exists", name, check=False).returncode == 0

    def image_id(self, name: str) -> str | None:
        found = self.run("image", "inspect", "--format", "{{.Id}}", name, check=False)
        return found.stdout.strip() if found.returncode == 0 else None


def ensure_base_image(podman: Podman, workdir: Path) -> str:
    """The Dockerfile's base, assembled with mmdebstrap unless an image of its name exists."""
    name, version = base_image()
    if podman.image_exists(name):
        return name
    suite = DEBIAN_SUITES.get(version)
    assert suite, f"no Debian release known to carry Python {version}"
    tarball = workdir / "base.tar"
    build = subprocess.run(
        ["mmdebstrap", "--variant=minbase", "--include=python3,python3-venv,python-is-python3",
         suite, str(tarball)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-4000:]
    podman.run("import", "--change", 'CMD ["python"]', str(tarball), name, timeout=300)
    tarball.unlink()
    found = podman.run("run", "--rm", "--network", "host", name, "python", "--version")
    assert found.stdout.split()[1].startswith(f"{version}."), found.stdout
    return name


def _pip_config() -> dict[str, str]:
    """The host pip's effective settings (environment over config files), as pip reports them."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    settings: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in listed.splitlines():
        match = re.fullmatch(r"([^.]*)\.([\w-]+)='(.*)'", line.strip())
        if match:
            (env if match.group(1) == ":env:" else settings)[match.group(2)] = match.group(3)
    return {**settings, **env}


def _local_path(value: str) -> Path | None:
    path = Path(urlparse(value).path) if value.startswith("file:") else Path(value)
    return path if path.is_absolute() and path.exists() else None


@dataclass
class BuildSources:
    """Build arguments and read-only bind mounts that give the build the host's pip sources."""

    build_args: dict[str, str] = field(default_factory=dict)
    # host path -> path in the build; fixed targets keep build arguments, and so the layer
    # cache, the same from run to run.
    mounts: dict[Path, Path] = field(default_factory=dict)

    def options(self) -> list[str]:
        options = [f"--build-arg={name}={value}" for name, value in self.build_args.items()]
        return options + [f"--volume={host}:{build}:ro" for host, build in self.mounts.items()]


def host_pip_sources(wheels: Path) -> BuildSources:
    sources = BuildSources()
    for name, value in _pip_config().items():
        if name not in PIP_SETTINGS:
            continue
        sources.build_args["PIP_" + name.upper().replace("-", "_")] = value
        for item in value.split():
            path = _local_path(item)
            if path is not None and name.endswith("index-url"):
                # A local index's pages link to files beside it (<root>/simple, <root>/files).
                path = path.parent
            if path is not None:
                sources.mounts[path] = path
    # The torch wheel the host's pip installs, found without an index (local wheels only:
    # an index would offer PyPI's CUDA build).
    wheels.mkdir(parents=True, exist_ok=True)
    found = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-index",
         "--dest", str(wheels), "torch==2.13.0"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if found.returncode == 0 and any(wheels.glob("torch-2.13.0*.whl")):
        sources.build_args["TORCH_WHEELS"] = "/wheels"
        sources.mounts[wheels] = Path("/wheels")
    return sources


def build_image(podman: Podman, tag: str, sources: BuildSources) -> str:
    """The service image, in Docker's format (the OCI format has no HEALTHCHECK). The image
    the tag named before is removed once untagged (unless a container still uses it); the
    layers it shares with this one stay in podman's cache."""
    previous = podman.image_id(tag)
    podman.run(
        "build", "--format", "docker", "--network", "host", "--pull=never",
        *sources.options(), "--tag", tag, "--file", str(DOCKERFILE), str(REPO),
        timeout=900,
    )  # fmt: skip
    if previous is not None and previous != podman.image_id(tag):
        podman.run("rmi", previous, check=False)
    return tag


def wait_healthy(podman: Podman, container: str, timeout: float = 180) -> None:
    """Run the image's HEALTHCHECK until it passes (podman schedules it through systemd,
    which these machines do not run, so the test runs it itself)."""
    deadline = time.monotonic() + timeout
    while True:
        state = podman.run("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        assert state == "running", f"{container} is {state}:\n{logs(podman, container)}"
        if podman.run("healthcheck", "run", container, check=False).returncode == 0:
            return
        assert time.monotonic() < deadline, f"never healthy:\n{logs(podman, container)}"
        time.sleep(1)


def logs(podman: Podman, container: str) -> str:
    result = podman.run("logs", container, check=False)
    return (result.stdout + result.stderr)[-6000:]


@contextmanager
def container(
    podman: Podman, image: str, name: str, volume: str, env: dict[str, str]
) -> Iterator[str]:
    """A detached container with host networking and a named volume, removed with its volume
    however the test ends."""
    podman.run("volume", "create", volume)
    try:
        options = [f"--env={key}={value}" for key, value in env.items()]
        podman.run(
            "run", "--detach", "--name", name, "--network", "host",
            "--volume", f"{volume}:/var/lib/anomaly", *options, image,
        )  # fmt: skip
        yield name
    finally:
        podman.run("rm", "--force", "--time", "0", name, check=False)
        podman.run("volume", "rm", "--force", volume, check=False)
