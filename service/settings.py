"""The service's one configuration object, read from ``ANOMALY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.calibration.sql.urls import engine_url

REPO_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"

SmoothingMethod = Literal["mean", "ewma", "median"]
Scope = Literal["score", "feedback", "admin"]


class ApiKeyConfig(BaseModel):
    """One API key: a name (recorded as the author of what it does), its scopes, and the key
    in clear (hashed at load) or as the hex SHA-256 of the key."""

    # An error must not echo the entry: it may hold a key in clear.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    scopes: list[Scope] = Field(min_length=1)
    key: SecretStr | None = None
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError(f"API key {self.name!r} needs exactly one of key, key_sha256")
        if self.key is not None and not self.key.get_secret_value().strip():
            raise ValueError(f"API key {self.name!r} is empty")
        return self


class Settings(BaseSettings):
    """Everything an operator can tune; every field maps to ``ANOMALY_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="ANOMALY_",
        extra="forbid",
        frozen=True,
        validate_default=True,
        hide_input_in_errors=True,  # api_keys may hold keys in clear
    )

    # --- serving ----------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Interface `python -m service` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port to listen on.")
    access_log: bool = Field(
        default=False,
        description="uvicorn's per-request access log; off by default (it costs every request "
        "time: docs/performance.md).",
    )
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry spans, metrics and logs (install the `otel` "
        "extra and configure an SDK, e.g. FASTAPI_OTEL_AUTO_CONFIGURE=true with "
        "OTEL_EXPORTER_OTLP_ENDPOINT). Off by default: checking for an SDK costs every request "
        "time, and on, scoring goes through FastAPI's router so spans carry the route "
        "(figures: docs/performance.md).",
    )

    # --- models -----------------------------------------------------------------------
    models_dir: Path = Field(
        default=REPO_MODELS_DIR,
        description="Folder of `<name>/<version>/` artifacts; default: the repo's models/.",
    )
    default_model: str | None = Field(
        default=None,
        description="Model that scores requests naming none; unset means the only loaded model.",
    )
    pinned_versions: dict[str, str] = Field(
        default_factory=dict,
        description='Serve these versions instead of the highest, e.g. {"synthetic-plant": "2"}.',
    )
    fail_fast_on_bad_artifact: bool = Field(
        default=False,
        description="Exit at start-up on a bad artifact instead of running not-ready (readyz 503 "
        "with the reason).",
    )

    torch_threads: int = Field(
        default=1,
        ge=1,
        description="Torch intra-op threads; 1 suits one worker per core (more threads spin and "
        "contend with the event loop).",
    )

    # --- requests ---------------------------------------------------------------------
    max_batch_readings: int = Field(
        default=10_000, ge=1, description="Most readings one scoring request may carry."
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    refused_body_drain_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="Most bytes of a refused request's unread body (a 401, a 413) read and "
        "dropped before the reply, so clients that send the whole body before reading (Python's "
        "urllib) get the reply instead of a connection reset; past it the connection is closed.",
    )
    refused_body_drain_s: float = Field(
        default=10.0,
        gt=0,
        description="Most seconds spent reading a refused request's unread body; past it the "
        "reply goes out and the connection is closed (a trickled body cannot hold it open).",
    )
    top_k_sensors: int = Field(
        default=3,
        ge=1,
        description="Contributing sensors reported per reading (capped at the model's).",
    )

    # --- smoothing and alerting ------------------------------------------------------
    smoothing_method: SmoothingMethod | None = Field(
        default=None,
        description="How a stream's normalised scores are smoothed; the median ignores a "
        "one-reading blip, the mean and EWMA spread it over the next readings. Unset: each "
        "model's declared smoothing, the one its threshold was set for (median for models "
        "that declare none). Set, it overrides every model's, and a declared model's stated "
        "false-alarm rate no longer holds.",
    )
    smoothing_window: int = Field(
        default=3,
        ge=1,
        description="Scores the rolling mean/median covers (1 disables smoothing), when the "
        "smoothing comes from these settings.",
    )
    ewma_alpha: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Weight of the newest score for the EWMA method, when the smoothing comes "
        "from these settings.",
    )
    alert_k: int = Field(
        default=3, ge=1, description="Alert when k of the last n smoothed scores exceed 1.0."
    )
    alert_n: int = Field(default=5, ge=1, description="Length of the k-of-n alert window.")
    alert_cooldown: int = Field(
        default=10,
        ge=0,
        description="Readings after an alert clears during which no new alert is raised.",
    )

    # --- bounded state ----------------------------------------------------------------
    stream_capacity: int = Field(
        default=100_000, ge=1, description="Streams whose state is held; the least recent go."
    )
    stream_idle_ttl_s: float = Field(
        default=3600.0, gt=0, description="Seconds a silent stream's state is kept."
    )
    recent_max_readings: int = Field(
        default=200_000,
        ge=1,
        description="Scored readings kept for feedback by reading id and the review queue, the "
        "oldest let go first (with Redis: also every replica's together in Redis).",
    )
    recent_retention_s: float = Field(
        default=3600.0, gt=0, description="Seconds a scored reading stays addressable by its id."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis holding stream states and recent readings, shared by every replica "
        "(e.g. redis://redis:6379/0); unset: held in this process.",
    )
    redis_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="Seconds a Redis call may take before scoring answers 503.",
    )
    redis_breaker_s: float = Field(
        default=5.0,
        ge=0,
        description="After a Redis call timed out, seconds during which scoring answers 503 "
        "at once instead of waiting on Redis again (0: always wait).",
    )
    error_quantile_window: int = Field(
        default=10_000,
        ge=10,
        description="Recent reconstruction errors the rolling p50/p90/p95/p99 gauges cover.",
    )

    # --- environment and access control -----------------------------------------------
    env: Literal["development", "production"] = Field(
        default="development",
        description="In production the service refuses to start without API keys or with a "
        "weak or well-known one.",
    )
    api_keys: list[ApiKeyConfig] = Field(
        default_factory=list,
        description='API keys as JSON, e.g. [{"name": "ops", "scopes": ["feedback"], '
        '"key_sha256": "<hex>"}]; scopes are score, feedback, admin.',
    )
    api_keys_file: Path | None = Field(
        default=None, description="A secrets file holding more keys in the same JSON form."
    )
    require_score_key: bool | None = Field(
        default=None,
        description="Scoring, streams and model details need a key (any of the score, feedback "
        "or admin scopes; feedback and admin endpoints always need theirs). Unset: needed in "
        "production, not in development; false opens them explicitly.",
    )

    # --- feedback store, recalibration, drift ------------------------------------------
    store_path: Path = Field(
        default=Path("var/feedback.sqlite3"),
        description="SQLite file holding labels, threshold versions and recalibration runs "
        "(the embedded default; unused when store_url is set).",
    )
    store_url: SecretStr | None = Field(
        default=None,
        description="Where the feedback store lives, as a URL: sqlite:///PATH (one process) or "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (shared by replicas: thresholds reach "
        "every replica by notification, one replica leads recalibration). Unset: "
        "sqlite:///<store_path>.",
    )
    store_poll_s: float = Field(
        default=5.0,
        gt=0,
        description="With a PostgreSQL store: seconds between checks for threshold versions "
        "and maintenance windows another replica wrote, the fallback should a notification "
        "be missed.",
    )
    recalibration_enabled: bool = Field(
        default=True,
        description="Let the background task move thresholds (apply or hold candidates); off, "
        "it still checks drift and refreshes the review queue's gauge every interval.",
    )
    recalibration_interval_s: float = Field(
        default=300.0, gt=0, description="Seconds between background recalibration runs."
    )
    recalibration_label_trigger: int = Field(
        default=100, ge=0, description="Run early after this many new labels (0: interval only)."
    )
    recalibration_method: Literal["quantile", "robust"] = Field(
        default="quantile",
        description="Candidate threshold: a quantile of confirmed normals, or median + k·MAD.",
    )
    recalibration_quantile: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Quantile of confirmed-normal errors; unset uses the manifest's quantile.",
    )
    recalibration_mad_k: float = Field(
        default=3.0, gt=0, description="k in median + k·MAD (MAD scaled to a normal sigma)."
    )
    recalibration_min_samples: int = Field(
        default=50,
        ge=2,
        description="Confirmed normals needed before a candidate is computed (at most "
        "recalibration_window_labels, the most a run samples).",
    )
    recalibration_confidence: float = Field(
        default=0.99,
        gt=0,
        lt=1,
        description="Quantile method: a candidate is weighed only when the share of normal "
        "readings measured above the threshold (labelled time ranges or carried readings, else "
        "the retained scored readings), at this confidence and their effective size, rules out "
        "the share the threshold stands for (1 - quantile).",
    )
    recalibration_max_change: float = Field(
        default=0.2,
        gt=0,
        description="Largest relative change applied without approval, from the threshold in "
        "force and from the last one a person chose (manifest, hand-set, approval, rollback: "
        "one to an automatic value keeps that value's anchor); larger ones wait.",
    )
    recalibration_min_change: float = Field(
        default=0.01, ge=0, description="Relative changes below this leave the threshold as it is."
    )
    recalibration_window_s: float = Field(
        default=7 * 24 * 3600.0, gt=0, description="Age of the oldest label a candidate uses."
    )
    recalibration_window_labels: int = Field(
        default=5000, ge=2, description="Most recent confirmed normals a candidate uses."
    )
    drift_alpha: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Significance level of the KS drift tests, shared by the reading-error "
        "test and the sensors' (BH-corrected) family.",
    )
    drift_min_effect: float = Field(
        default=0.1, gt=0, lt=1, description="Smallest KS statistic D that counts as drift."
    )
    drift_retrain_effect: float = Field(
        default=0.3, gt=0, le=1, description="KS statistic D from which retraining is recommended."
    )
    drift_min_samples: int = Field(
        default=50,
        ge=2,
        description="Recent confirmed normals needed before drift is judged (at most "
        "recalibration_window_labels, the most a check samples).",
    )
    review_alert_limit: int = Field(
        default=100,
        ge=0,
        description="Unlabelled recent alerts the review queue lists (newest first).",
    )
    review_audit_size: int = Field(
        default=20,
        ge=0,
        description="Random unflagged readings added to the review queue, so confirmed normals "
        "are not all drawn from high-error alerts.",
    )

    @property
    def store_location(self) -> str:
        """The store's URL: ``store_url`` when set, else the SQLite file at ``store_path``."""
        if self.store_url is not None:
            return self.store_url.get_secret_value()
        return f"sqlite:///{self.store_path}"

    @property
    def score_key_required(self) -> bool:
        """``require_score_key`` as set, else closed in production and open in development."""
        if self.require_score_key is not None:
            return self.require_score_key
        return self.env == "production"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.recalibration_min_change >= self.recalibration_max_change:
            raise ValueError("recalibration_min_change must be below recalibration_max_change")
        if self.drift_min_effect >= self.drift_retrain_effect:
            raise ValueError("drift_min_effect must be below drift_retrain_effect")
        for needed in ("recalibration_min_samples", "drift_min_samples"):
            # Both sample at most recalibration_window_labels confirmed normals: needing more
            # would leave every run insufficient, whatever the labels.
            if getattr(self, needed) > self.recalibration_window_labels:
                raise ValueError(
                    f"{needed} ({getattr(self, needed)}) cannot exceed "
                    f"recalibration_window_labels ({self.recalibration_window_labels}), the "
                    "most confirmed normals a run samples"
                )
        if self.alert_k > self.alert_n:
            raise ValueError(f"alert_k ({self.alert_k}) cannot exceed alert_n ({self.alert_n})")
        if self.default_model is not None and not self.default_model.strip():
            raise ValueError("default_model, when set, must name a model")
        if self.store_url is not None:
            engine_url(self.store_url.get_secret_value())  # an unusable scheme fails here
        return self
