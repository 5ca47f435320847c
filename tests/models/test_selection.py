"""Model selection on normal data (models/selection.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.__main__ import main
from models.injected import injected_detection
from models.inputs import rewritten_readings
from models.selection import autocorrelation_window, candidates, select
from models.train import train
from models.train_config import TrainConfig
from service.scoring.artifact import load_artifact
from tests.models.test_linear import ar_process


def test_the_memory_of_white_noise_is_the_shortest_window() -> None:
    assert autocorrelation_window(np.random.default_rng(0).normal(size=(2000, 4))) == 2


def test_a_slower_process_remembers_longer() -> None:
    rng = np.random.default_rng(0)
    fast, slow = np.zeros((3000, 3)), np.zeros((3000, 3))
    for t in range(1, 3000):
        noise = rng.normal(size=3)
        fast[t] = 0.5 * fast[t - 1] + noise
        slow[t] = 0.95 * slow[t - 1] + noise
    assert autocorrelation_window(slow) > autocorrelation_window(fast)
    assert autocorrelation_window(slow, max_window=6) == 6


def test_candidates_are_bounded_and_cheapest_first() -> None:
    pool = candidates(TrainConfig(), memory=15)
    assert len(pool) == 10
    assert {(c.family, c.window) for c in pool} >= {
        ("cva", 15),
        ("dpca", 2),
        ("autoencoder", 1),
        ("conv", 15),
    }
    assert all(c.window <= 20 for c in candidates(TrainConfig(), memory=80))


def test_a_model_that_ignores_the_faults_detects_at_the_false_alarm_rate() -> None:
    """The detection rate is measured at the threshold: a detector blind to a kind of fault
    flags its readings about as often as normal ones."""
    normal = ar_process(2400, 4, seed=3)
    sensors = [f"s{i}" for i in range(4)]
    result = train(
        normal[:1400],
        sensors,
        TrainConfig(family="dpca", window=1, quantile=0.95),
        calibration_values=normal[1400:],
    )
    rates = injected_detection(result, normal[1400:])
    assert set(rates) == {"spike", "bias", "drift", "stuck", "noise", "correlation", "dynamics"}
    assert rates["dynamics"] < 0.2  # one reading at a time cannot see dynamics
    assert rates["spike"] > 0.3  # 5-sigma spikes off the plane


def lagged_chain(n: int, seed: int) -> np.ndarray:
    """Each of three sensors follows the previous one a reading later; a fourth wanders on
    its own. A reading alone shows none of the chain; a window does."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 4))
    for t in range(1, n):
        x[t, 0] = 0.9 * x[t - 1, 0] + rng.normal()
        x[t, 1] = x[t - 1, 0] + 0.1 * rng.normal()
        x[t, 2] = x[t - 1, 1] + 0.1 * rng.normal()
        x[t, 3] = 0.9 * x[t - 1, 3] + rng.normal()
    return x


def test_selection_prefers_the_dynamic_model_on_a_dynamic_process() -> None:
    normal = lagged_chain(3000, seed=5)
    sensors = [f"s{i}" for i in range(4)]
    base = TrainConfig(quantile=0.95)
    configs = [
        TrainConfig(family="dpca", window=1, quantile=0.95),
        TrainConfig(family="cva", window=3, quantile=0.95),
    ]
    chosen = select(normal[:2000], sensors, base, calibration_values=normal[2000:], configs=configs)
    assert [s.config.family for s in chosen.ranking] == ["cva", "dpca"]
    best, other = chosen.ranking
    assert best.mean_detection > other.mean_detection + 0.1
    assert best.detection["dynamics"] > 0.5 > other.detection["dynamics"]
    assert chosen.result.config.family == "cva"
    assert chosen.result.config.smoothing == best.config.smoothing
    summary = chosen.summary()
    assert summary["ranking"][0]["family"] == "cva"  # type: ignore[index]


def train_cva(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[str, Any]:
    """``train --family cva`` with a calibration run: what it printed, and its manifest."""
    normal = ar_process(2600, 4, seed=6)
    np.save(tmp_path / "train.npy", normal[:1600])
    np.save(tmp_path / "cal.npy", normal[1600:])
    args = ["train", "--data", str(tmp_path / "train.npy"), "--out", str(tmp_path / "m")]
    args += ["--name", "model", "--version", "1", "--family", "cva", *extra]
    args += ["--calibration-data", str(tmp_path / "cal.npy")]
    assert main(args) == 0
    return capsys.readouterr().err, load_artifact(tmp_path / "m" / "model" / "1").manifest


def test_train_chooses_by_default_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err, manifest = train_cva(tmp_path, capsys)
    assert "choosing among 3 candidates" in err
    assert "chose cva over window" in err
    assert manifest.training["family"] == "cva"
    assert manifest.metrics["selection"]["ranking"][0]["family"] == "cva"
    assert manifest.training["glitch_guard"] is False  # off by default
    assert manifest.glitch_limits is None and "glitch guard:" not in err


def test_train_with_the_glitch_guard_weighs_and_ships_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err, manifest = train_cva(tmp_path, capsys, "--glitch-guard")
    assert manifest.training["glitch_guard"] is True
    assert "glitch guard: a sensor's value that jumps from both neighbours by more than" in err
    assert manifest.glitch_limits is not None and len(manifest.glitch_limits) == 4
    # The count is of the calibration run, with the limits that ship.
    calibration = np.load(tmp_path / "cal.npy")
    rewritten = manifest.metrics["glitch_guard"]["calibration_readings_rewritten"]
    assert rewritten == rewritten_readings(calibration, np.array(manifest.glitch_limits))


def test_an_autoencoder_option_means_the_autoencoder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "train.npy", ar_process(600, 3, seed=7))
    args = ["train", "--data", str(tmp_path / "train.npy"), "--out", str(tmp_path / "m")]
    args += ["--name", "model", "--version", "1"]
    assert main([*args, "--epochs", "2", "--patience", "1"]) == 0
    err = capsys.readouterr().err
    assert "choosing among" not in err and "epoch 1/2" in err


def test_named_families_bound_the_candidates_to_them_with_both_residuals() -> None:
    pool = candidates(TrainConfig(), memory=15, families=("autoencoder", "conv", "vae"))
    assert {c.family for c in pool} == {"autoencoder", "conv", "vae"}
    assert {(c.window, c.residual) for c in pool if c.family == "conv"} == {
        (w, r) for w in (2, 8, 15) for r in ("squares", "whitened")
    }
    assert sorted({c.window for c in pool if c.family == "vae"}) == [1, 2, 8, 15]
    assert len(pool) == 22
    assert all(c.residual == "squares" for c in candidates(TrainConfig(), memory=15))
    linear = candidates(TrainConfig(), memory=15, families=("cva",))
    assert [(c.family, c.window, c.residual) for c in linear] == [
        ("cva", w, "squares") for w in (2, 8, 15)
    ]
    with pytest.raises(ValueError, match="families must name some of"):
        candidates(TrainConfig(), memory=15, families=("pca",))


def test_train_chooses_among_the_named_families_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    normal = ar_process(1400, 4, seed=8)
    np.save(tmp_path / "train.npy", normal[:900])
    np.save(tmp_path / "cal.npy", normal[900:])
    args = ["train", "--data", str(tmp_path / "train.npy"), "--out", str(tmp_path / "m")]
    args += ["--name", "model", "--version", "1", "--calibration-data", str(tmp_path / "cal.npy")]
    args += ["--epochs", "15", "--patience", "3"]
    assert main([*args, "--families", "autoencoder", "--window", "2"]) == 0
    err = capsys.readouterr().err
    assert "choosing among 2 candidates" in err
    assert "autoencoder window 2, whitened" in err
    manifest = load_artifact(tmp_path / "m" / "model" / "1").manifest
    ranking = manifest.metrics["selection"]["ranking"]
    assert {(r["family"], r["window"], r["residual"]) for r in ranking} == {
        ("autoencoder", 2, "squares"),
        ("autoencoder", 2, "whitened"),
    }
    # The summary names the whitening exactly when the chosen model is whitened.
    whitened = manifest.training["residual"] == "whitened"
    assert ("windows the network did not learn" in err) == whitened
    assert ("chose autoencoder over window 2, whitened, smoothing" in err) == whitened
    # --residual narrows the named families' candidates, squares as well as whitened.
    narrowed = ["--families", "autoencoder", "--window", "2", "--residual", "squares", "--force"]
    assert main([*args, *narrowed]) == 0
    err = capsys.readouterr().err
    assert "choosing among" not in err  # one candidate left: nothing to choose
    assert load_artifact(tmp_path / "m" / "model" / "1").manifest.training["residual"] == "squares"
    assert main([*args, "--families", "autoencoder", "--family", "conv"]) == 2
    assert "--family conv already names one" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--families", "autoencoder,pca"])
    assert "expected comma-separated families" in capsys.readouterr().err
