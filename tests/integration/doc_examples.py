"""The shell and Python examples of a Markdown page, turned into one bash script that runs
them in order against a real ``python -m service`` on a free port.

``scripts/serve`` in an example (with the variables it is given) starts, or restarts, the
service on the test's port; the script starts it first as a reader following the page has
it running. ``curl -s`` fails on an HTTP error status, so a refused example fails the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOCUMENTED_PORT = "8000"

PREAMBLE = """\
set -euo pipefail
stop_server() {
    if [[ -n "${SERVER_PID:-}" ]]; then kill "$SERVER_PID"; wait "$SERVER_PID" || true; fi
}
serve() {  # scripts/serve on the test's port; restarted with the variables it is given
    stop_server
    "$PYTHON" -m service --port "$PORT" --log-level warning "$@" >>"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 900); do
        if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" || { echo "the service exited" >&2; return 1; }
        sleep 0.1
    done
    echo "the service did not become ready" >&2
    return 1
}
trap stop_server EXIT
serve
"""


@dataclass(frozen=True)
class Example:
    language: str
    code: str


def examples(markdown: str) -> list[Example]:
    return [Example(language, code) for language, code in FENCE.findall(markdown)]


def runnable(example: Example, port: int) -> str:
    """One example as bash: curl failing on HTTP errors, the documented port replaced."""
    code = example.code.replace(f"localhost:{DOCUMENTED_PORT}", f"127.0.0.1:{DOCUMENTED_PORT}")
    code = code.replace(f"127.0.0.1:{DOCUMENTED_PORT}", f"127.0.0.1:{port}")
    if example.language == "python":
        return f"\"$PYTHON\" - <<'PYTHON_EXAMPLE'\n{code}PYTHON_EXAMPLE\n"
    code = re.sub(r"\bcurl -s\b", "curl -sS --fail-with-body", code)
    return re.sub(r"(^|\s)scripts/serve\b", r"\1serve", code)


def joined(chosen: list[Example]) -> list[Example]:
    """Consecutive Python examples run as one program: the later ones use the earlier's names."""
    out: list[Example] = []
    for example in chosen:
        if out and example.language == "python" and out[-1].language == "python":
            out[-1] = Example("python", out[-1].code + "\n" + example.code)
        else:
            out.append(example)
    return out


def script(chosen: list[Example], port: int) -> str:
    chosen = joined(chosen)
    return PREAMBLE + "\n".join(
        f"echo '>>> example {i}'\n{runnable(example, port)}" for i, example in enumerate(chosen)
    )
