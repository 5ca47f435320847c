"""The models this process serves: one version per name, swapped atomically on reload."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.errors import ArtifactRejected, NotReady, UnknownModel
from service.scoring.artifact import Artifact, ArtifactError, discover_artifacts, load_artifact
from service.scoring.engine import ScoringEngine
from service.scoring.manifest import Manifest

logger = logging.getLogger(__name__)

VALUE_REACH = 1e15
"""How many training standard deviations from its training mean a value may lie: far beyond
any real reading, and near enough that its squared error stays finite in float32."""


def version_key(version: str) -> tuple[int, int, str]:
    """Numeric versions sort numerically and above non-numeric ones ("10" > "9" > "beta")."""
    return (1, int(version), "") if version.isdigit() else (0, 0, version)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A verified artifact plus what the hot path needs precomputed."""

    artifact: Artifact
    engine: ScoringEngine
    sensor_index: dict[str, int] = field(repr=False)
    # Per sensor, float32 like the readings they are compared with (no cast on the hot path).
    value_low: np.ndarray = field(repr=False)
    value_high: np.ndarray = field(repr=False)
    within: tuple[float, float] = field(repr=False)  # inside every sensor's bounds
    # The glitch guard's jump limits (float32, as the readings), when the model has them.
    glitch_limits: np.ndarray | None = field(default=None, repr=False)
    # Whether its reconstruction is an expectation of the reading (replies show it, or null).
    expects_readings: bool = field(default=True, repr=False)
    # Which artifact, beyond its version: one rewritten under the same version differs here,
    # so a stream state begun under the former one (its window, smoothing, glitch guard) is
    # not carried into the new one's scores.
    fingerprint: str = field(default="", repr=False)

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> LoadedModel:
        manifest = artifact.manifest
        mean, scale = np.array(manifest.scaler.mean), np.array(manifest.scaler.scale)
        low = (mean - VALUE_REACH * scale).astype(np.float32)
        high = (mean + VALUE_REACH * scale).astype(np.float32)
        return cls(
            artifact=artifact,
            engine=ScoringEngine(artifact),
            sensor_index={name: i for i, name in enumerate(manifest.sensors)},
            value_low=low,
            value_high=high,
            within=(float(low.max()), float(high.min())),
            glitch_limits=(
                None
                if manifest.glitch_limits is None
                else np.asarray(manifest.glitch_limits, dtype=np.float32)
            ),
            expects_readings=manifest.expects_readings,
            fingerprint=hashlib.sha256(manifest.model_dump_json().encode()).hexdigest()[:16],
        )

    @property
    def manifest(self) -> Manifest:
        return self.artifact.manifest

    @property
    def name(self) -> str:
        return self.artifact.manifest.name

    @property
    def version(self) -> str:
        return self.artifact.manifest.version

    @property
    def sensors(self) -> list[str]:
        return self.artifact.manifest.sensors

    @property
    def window(self) -> int:
        return self.artifact.manifest.window


class ModelRegistry:
    """Discovers, verifies and serves models; a failed (re)load never replaces a good model.

    ``problems`` maps a model name (or an artifact folder that could not even be named) to
    why it is not served; readiness reports them. ``refused`` maps ``name/version`` to why a
    newer version was refused while an older good one of that name is served: start-up falls
    back to the newest good version, as a reload keeps the last good model, and says so.
    """

    def __init__(
        self,
        models_dir: Path,
        *,
        pinned_versions: dict[str, str] | None = None,
        default_model: str | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.pinned_versions = dict(pinned_versions or {})
        self._default_setting = default_model
        self._models: dict[str, LoadedModel] = {}
        self.problems: dict[str, str] = {}
        self.refused: dict[str, str] = {}

    # --- lookups (hot path) -----------------------------------------------------------
    def get(self, name: str | None) -> LoadedModel:
        if not self._models:
            problems = "; ".join(self.problems.values()) or "no model loaded"
            raise NotReady(f"no model is being served: {problems}")
        if name is None:
            name = self.default_name
            if name is None:
                raise UnknownModel(self.no_default_reason())
        try:
            return self._models[name]
        except KeyError:
            known = ", ".join(sorted(self._models)) or "none"
            raise UnknownModel(f"model {name!r} is not loaded (loaded: {known})") from None

    @property
    def default_name(self) -> str | None:
        if self._default_setting is not None:
            return self._default_setting if self._default_setting in self._models else None
        if len(self._models) == 1:
            return next(iter(self._models))
        return None

    def no_default_reason(self) -> str:
        if self._default_setting is not None:
            return f"the default model {self._default_setting!r} is not loaded"
        if not self._models:
            return f"no model is loaded from {self.models_dir}"
        names = ", ".join(sorted(self._models))
        return (
            f"several models are loaded ({names}) and no default is configured: name the "
            "model in the request (see /docs for each form: `model` in a score request, "
            "`readings.model` or `time_range.model` in a label), or set ANOMALY_DEFAULT_MODEL"
        )

    def models(self) -> list[LoadedModel]:
        return [self._models[name] for name in sorted(self._models)]

    def __contains__(self, name: object) -> bool:
        return name in self._models

    # --- loading ------------------------------------------------------------------------
    def _versions(self, only: str | None = None) -> dict[str, list[Path]]:
        """Per model name, the folders that may be served, preferred first: the pinned version
        alone, else every version, highest first."""
        by_name: dict[str, list[Path]] = {}
        for folder in discover_artifacts(self.models_dir):
            by_name.setdefault(folder.parent.name, []).append(folder)
        if only is not None:
            by_name = {only: by_name.get(only, [])}
        chosen: dict[str, list[Path]] = {}
        for name, folders in by_name.items():
            pinned = self.pinned_versions.get(name)
            if pinned is not None:
                chosen[name] = [self.models_dir / name / pinned]
            elif folders:
                chosen[name] = sorted(folders, key=lambda p: version_key(p.name), reverse=True)
        for name, version in self.pinned_versions.items():
            if only in (None, name):
                chosen.setdefault(name, [self.models_dir / name / version])
        return chosen

    def load_all(self) -> dict[str, str]:
        """Start-up: for every model name the newest version that loads (a pinned version
        only); returns (and keeps) the problems found. Versions refused on the way to a good
        one are kept in ``refused``: a bad new file must not take down a good old model."""
        self.problems = {}
        self.refused = {}
        if not self.models_dir.is_dir():
            self.problems["models_dir"] = f"models directory {self.models_dir} does not exist"
            return self.problems
        found = self._versions()
        if not found:
            self.problems["models_dir"] = (
                f"no model artifacts (<name>/<version>/manifest.json) under {self.models_dir}"
            )
        for name, folders in found.items():
            model, refused = self._newest_good(name, folders)
            if model is None:
                logger.error("not serving %s: %s", name, "; ".join(refused.values()))
                self.problems[name] = "; ".join(refused.values())
                continue
            self._install(name, model)
            for key, reason in refused.items():
                logger.error("refused %s, serving version %s: %s", key, model.version, reason)
            self.refused.update(refused)
        if self._default_setting is not None and self._default_setting not in self._models:
            self.problems.setdefault(
                "default_model",
                f"default model {self._default_setting!r} is not among the loaded models",
            )
        return self.problems

    def reload(self, name: str | None = None) -> list[LoadedModel]:
        """Re-read artifacts (all, or one name): an operator asking for the newest version
        gets it or a refusal naming why, never a quiet fallback; refuses the lot if any
        newest version is bad (reload one name to leave the others out of it).

        Everything is verified before anything is swapped in, so a refused reload leaves
        every model as it was.
        """
        found = self._versions(only=name)
        if name is not None and not found:
            raise UnknownModel(f"no artifact for model {name!r} under {self.models_dir}")
        if not found:
            raise ArtifactRejected(f"no model artifacts under {self.models_dir}")
        loaded: dict[str, LoadedModel] = {}
        failures: list[str] = []
        for model_name, folders in found.items():
            try:
                loaded[model_name] = self._load(model_name, folders[0])
            except ArtifactError as exc:
                failures.append(self._reason(exc))
        if failures:
            raise ArtifactRejected(
                "reload refused, still serving the previous models: " + "; ".join(failures)
            )
        for model_name, model in loaded.items():
            self._install(model_name, model)
            self.problems.pop(model_name, None)
            for key in [k for k in self.refused if k.split("/", 1)[0] == model_name]:
                del self.refused[key]
        if self._default_setting is None or self._default_setting in self._models:
            self.problems.pop("default_model", None)
        if self._models:
            self.problems.pop("models_dir", None)
        return list(loaded.values())

    def _newest_good(
        self, name: str, folders: list[Path]
    ) -> tuple[LoadedModel | None, dict[str, str]]:
        """The first of ``folders`` (preferred first) that loads, and why the ones before it
        were refused (``name/version``: reason, paths relative to the models folder)."""
        refused: dict[str, str] = {}
        for folder in folders:
            try:
                return self._load(name, folder), refused
            except ArtifactError as exc:
                refused[f"{name}/{folder.name}"] = self._reason(exc)
        return None, refused

    def _reason(self, exc: ArtifactError) -> str:
        """The refusal without the server's absolute path (readiness is unauthenticated)."""
        try:
            where = str(Path(exc.path).relative_to(self.models_dir))
        except ValueError:
            where = Path(exc.path).name
        return f"model artifact {where}: {exc.reason}"

    def _load(self, name: str, folder: Path) -> LoadedModel:
        try:
            artifact = load_artifact(folder)
        except ArtifactError:
            raise
        except Exception as exc:
            # A check that fails in a way nobody foresaw still refuses this artifact alone:
            # start-up goes on not ready, a reload keeps the last good model.
            logger.exception("unexpected failure loading the artifact %s", folder)
            raise ArtifactError(
                folder, f"could not be loaded ({type(exc).__name__}: {exc})"
            ) from exc
        manifest = artifact.manifest
        if manifest.name != name or manifest.version != folder.name:
            raise ArtifactError(
                folder,
                f"manifest says {manifest.name}/{manifest.version} but the folder is "
                f"{name}/{folder.name}",
            )
        return LoadedModel.from_artifact(artifact)

    def _install(self, name: str, model: LoadedModel) -> None:
        # Its threshold is put in force by the threshold keeper, which reloads through
        # ThresholdKeeper.swap_models so no request sees the new model without it.
        self._models[name] = model
        logger.info("serving model %s version %s from %s", name, model.version, model.artifact.path)
