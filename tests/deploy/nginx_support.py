"""deploy/nginx/ as the tests run it: the real files, with only the upstream's server lines,
the listen line and the /tmp paths moved to the test's own places.

Used by tests/deploy/test_deploy_nginx.py (``nginx -t``) and by
tests/integration/test_nginx_balancer.py (nginx in front of real service processes).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NGINX_DIR = REPO / "deploy" / "nginx"
MAIN_CONF = NGINX_DIR / "nginx.conf"
PROXY_CONF = NGINX_DIR / "anomaly.conf"
MISSING = "nginx is not installed (Debian package nginx; .ci/run installs it)"

_SERVER = re.compile(r"(?m)^(?P<indent>[ \t]*)server replica-\d+:8000(?P<params>[^;]*);\n")
_LISTEN = re.compile(r"(?m)^(?P<indent>[ \t]*)listen 8080;$")


def find_nginx() -> str | None:
    """Debian installs it in /usr/sbin, which a non-root PATH may not hold."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def upstream_params() -> list[str]:
    """The parameters of each replica's server line in the real nginx.conf."""
    return [match.group("params") for match in _SERVER.finditer(MAIN_CONF.read_text())]


def render(prefix: Path, upstreams: list[str], listen: str) -> Path:
    """Write nginx.conf and anomaly.conf into ``prefix``, the replicas replaced by
    ``upstreams`` (host:port, each keeping the real lines' parameters) and nginx listening
    on ``listen``; returns the main file. Fails if the real file's shape has changed, so a
    test never runs a config other than the one it claims to."""
    text = MAIN_CONF.read_text()
    servers = list(_SERVER.finditer(text))
    assert len(servers) >= 2, "nginx.conf should list the replicas as `server replica-N:8000`"
    params = {match.group("params") for match in servers}
    assert len(params) == 1, f"every replica should have the same parameters: {params}"
    indent, param = servers[0].group("indent"), params.pop()
    replaced = "".join(f"{indent}server {address}{param};\n" for address in upstreams)
    text = text[: servers[0].start()] + replaced + text[servers[-1].end() :]
    text, listens = _LISTEN.subn(rf"\g<indent>listen {listen};", text)
    assert listens == 1, "nginx.conf should have one `listen 8080;`"
    assert text.count("/tmp/") >= 2, "nginx.conf keeps what nginx writes under /tmp"
    text = text.replace("/tmp/", f"{prefix}/")
    (prefix / "nginx.conf").write_text(text)
    shutil.copy(PROXY_CONF, prefix / "anomaly.conf")
    # Run as root, nginx's workers are `nobody`: they must reach the temporary folders.
    prefix.chmod(0o755)
    return prefix / "nginx.conf"


def check_config(nginx: str, conf: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on ``conf``, its prefix the folder it is in."""
    return subprocess.run(
        [nginx, "-t", "-e", "stderr", "-p", f"{conf.parent}/", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def start(nginx: str, conf: Path, access_log: Path, error_log: Path) -> subprocess.Popen[bytes]:
    """nginx in the foreground; its access log (stdout) and error log (stderr) to files."""
    with access_log.open("ab") as out, error_log.open("ab") as err:
        return subprocess.Popen(
            [nginx, "-e", "stderr", "-p", f"{conf.parent}/", "-c", str(conf), "-g", "daemon off;"],
            stdout=out,
            stderr=err,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the master, which stops its workers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
