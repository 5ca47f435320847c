"""The settings of a training run: refused when they cannot be trained, and resolved to the
sizes actually trained."""

import pytest

from models.network import default_hidden, default_latent
from models.train_config import TrainConfig


def test_config_is_validated_and_resolved() -> None:
    with pytest.raises(ValueError, match="quantile must be in"):
        TrainConfig(quantile=1.0)
    with pytest.raises(ValueError, match="val_fraction \\+ calibration_fraction must be < 1"):
        TrainConfig(val_fraction=0.5, calibration_fraction=0.5)
    resolved = TrainConfig(window=2).resolved(50)
    assert resolved.latent == default_latent(100) and resolved.hidden == default_hidden(100, 17)
    assert TrainConfig().resolved(50).latent == 8
    assert TrainConfig().resolved(50).hidden == (32,)
