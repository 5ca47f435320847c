# syntax=docker/dockerfile:1
# The anomaly-scoring service: CPU-only torch, the bundled model, one uvicorn worker per
# container (scale with replicas), SQLite feedback store on a volume, non-root.
#   docker build -t anomaly-service .      (podman: podman build --format docker ..., to keep
#                                           the HEALTHCHECK, which the OCI format drops)
#   docker run -p 8000:8000 --env-file .env -v anomaly-data:/var/lib/anomaly anomaly-service
# Build arguments (TORCH_WHEELS, PIP_*) and an offline build: docs/operations.md.
ARG PYTHON_VERSION=3.11

# ---- builder: a self-contained virtual environment in /opt/venv ------------------------
FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
# pip's own settings, for a build behind a package mirror or a proxy with its own CA; unset
# (pip's defaults) unless passed, e.g. --build-arg PIP_INDEX_URL=https://mirror.example/simple.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CERT
# Where the CPU-only torch wheel comes from, as a pip --find-links location: PyTorch's CPU
# index by default (PyPI's default wheel pulls in CUDA, GBs), or a directory of wheels
# mounted into the build for an offline build (docs/operations.md).
ARG TORCH_WHEELS=https://download.pytorch.org/whl/cpu/torch/
# torch alone from there; the project's `torch==2.13.0` is then already satisfied, and
# torch's own dependencies come from PyPI with the project's below.
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir --no-index --no-deps --find-links "$TORCH_WHEELS" torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service/ service/
COPY models/ models/
RUN pip install --no-cache-dir . \
    && pip check

# ---- runtime: slim image, venv and model artifacts only ---------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    ANOMALY_HOST=0.0.0.0 \
    ANOMALY_PORT=8000 \
    ANOMALY_MODELS_DIR=/app/models \
    ANOMALY_STORE_PATH=/var/lib/anomaly/feedback.sqlite3 \
    ANOMALY_ENV=production
RUN groupadd --system --gid 10001 anomaly \
    && useradd --system --uid 10001 --gid anomaly --no-create-home --home-dir /app anomaly \
    && mkdir -p /var/lib/anomaly \
    && chown anomaly:anomaly /var/lib/anomaly
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The bundled artifacts (models/<name>/<version>/), owned by root: the service only reads them.
COPY models/ /app/models/
USER 10001:10001
VOLUME ["/var/lib/anomaly"]
EXPOSE 8000
# Ready means model loaded, threshold present and feedback store reachable (no curl in slim).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ANOMALY_PORT', '8000') + '/readyz', timeout=4)"]
CMD ["python", "-m", "service"]
