"""What the reports call a model and what they advise for it, by family and window."""

from __future__ import annotations

import doctest
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from models import evaluate_model
from models.evaluate_model import ModelForm
from models.metrics import evaluate_detector
from models.separation import INVISIBLE_ADVICE, RECONSTRUCTION_ADVICE, WINDOW_ADVICE
from service.scoring.artifact import load_artifact
from service.scoring.manifest import ScoreSmoothing

BUNDLED = Path(__file__).parents[2] / "models" / "synthetic-plant" / "2"


def _artifact(**training: object) -> SimpleNamespace:
    """The bundled artifact's manifest as if another family had written it (only the fields
    the report reads)."""
    manifest = load_artifact(BUNDLED).manifest
    window = int(training.pop("window", manifest.window))  # type: ignore[call-overload]
    smoothing = training.pop("smoothing", None)
    changed = manifest.model_copy(
        update={
            "window": window,
            "smoothing": smoothing,
            "training": {**manifest.training, **training},
        }
    )
    return SimpleNamespace(manifest=changed)


def test_the_model_is_named_by_the_family_and_window_its_manifest_records() -> None:
    cva = _artifact(family="cva", window=8, smoothing=ScoreSmoothing(method="ewma", alpha=0.3))
    form = ModelForm.of(cva)  # type: ignore[arg-type]
    assert form == ModelForm("cva", 8, "ewma:0.3", None)
    assert form.name == "cva over 8 readings"
    # An artifact from before families (and smoothings) were recorded is an autoencoder.
    manifest = load_artifact(BUNDLED).manifest
    training = {k: v for k, v in manifest.training.items() if k != "family"}
    older = manifest.model_copy(update={"window": 1, "smoothing": None, "training": training})
    form = ModelForm.of(SimpleNamespace(manifest=older))  # type: ignore[arg-type]
    assert form.name == "autoencoder over 1 reading" and form.smoothing is None
    bundled = ModelForm.of(load_artifact(BUNDLED))
    assert bundled.name == "conv over 20 readings" and bundled.smoothing == "none"


def test_cva_over_8_readings_gets_no_autoencoder_or_use_a_window_advice() -> None:
    advice = ModelForm("cva", 8, "ewma:0.3").advice()
    for text in (advice.capacity, advice.weak, advice.invisible):
        assert "latent" not in text and "denoising" not in text and "plane-variance" not in text
    assert advice.capacity != RECONSTRUCTION_ADVICE and "linear" in advice.capacity
    # It already has a window: the advice says so and asks for a longer one.
    assert advice.weak != WINDOW_ADVICE and advice.invisible != INVISIBLE_ADVICE
    assert "already reads 8 readings" in advice.weak and "ewma:0.3" in advice.weak
    assert "--window more than 8" in advice.invisible
    assert "not be separable for this model" in advice.invisible
    assert "plane-variance" not in ModelForm("cva", 8, "ewma:0.3").range_advice()


def test_the_autoencoder_keeps_its_own_advice() -> None:
    one = ModelForm("autoencoder", 1, None).advice()
    assert (one.capacity, one.weak, one.invisible) == (
        RECONSTRUCTION_ADVICE,
        WINDOW_ADVICE,
        INVISIBLE_ADVICE,
    )
    assert "--plane-variance 0.9" in ModelForm("autoencoder", 1, None).range_advice()
    # Already trained with the plane, or another network: not offered again.
    assert "plane-variance" not in ModelForm("autoencoder", 1, None, 0.9).range_advice()
    assert "plane-variance" not in ModelForm("vae", 8, "none").range_advice()
    windowed = ModelForm("vae", 8, "none").advice()
    assert windowed.capacity == RECONSTRUCTION_ADVICE
    assert "smoothing before the threshold" in windowed.weak and "a longer smoothing" not in (
        windowed.weak
    )


def test_a_cva_verdict_reads_its_own_advice() -> None:
    """A kind scored like normal readings: the verdict's advice is the CVA's, not the
    autoencoder's."""
    rng = np.random.default_rng(0)
    scores = np.r_[rng.lognormal(0, 0.5, 2000), rng.lognormal(0, 0.5, 300)]
    labels = np.r_[np.zeros(2000, bool), np.ones(300, bool)]
    kinds = np.r_[[""] * 2000, ["fault 03"] * 300]
    form = ModelForm("cva", 8, "ewma:0.3")
    result = evaluate_detector(
        form.name, scores, labels, threshold=3.0, threshold_source="h", kinds=kinds,
        advice=form.advice(),
    )  # fmt: skip
    verdict = result.verdicts["fault 03"]
    assert verdict.verdict == "not separated"
    assert "latent" not in verdict.message and "train --window)" not in verdict.message
    assert "--window more than 8" in verdict.message
    assert "latent" not in result.capacity.message and not result.capacity.ok


def test_doctests() -> None:
    assert doctest.testmod(evaluate_model).failed == 0


def test_a_one_reading_model_that_smooths_is_not_told_to_smooth() -> None:
    smoothed = ModelForm("autoencoder", 1, "ewma:0.3").advice()
    assert "--window" in smoothed.weak and "smoothing" not in smoothed.weak
    assert ModelForm("autoencoder", 1, None).advice().weak == WINDOW_ADVICE
    assert ModelForm("autoencoder", 1, "none").advice().weak == WINDOW_ADVICE
    # Denoising is the default: the capacity advice names the options that change it.
    assert (
        "--noise-std" in RECONSTRUCTION_ADVICE and "denoising variant" not in RECONSTRUCTION_ADVICE
    )
