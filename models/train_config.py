"""The settings of one training run (:class:`TrainConfig`), checked when made: every
choice that decides the model, recorded in the artifact's manifest. ``models/train.py`` runs
them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from models.network import ACTIVATIONS, default_hidden, default_latent
from models.operating_point import parse_smoothing
from models.whitened import RESIDUALS

FAMILIES = ("autoencoder", "conv", "vae", "dpca", "cva")
"""Model families ``train`` fits; all write the same artifact (see models/linear.py)."""
LINEAR_FAMILIES = ("dpca", "cva")
NETWORK_FAMILIES = tuple(family for family in FAMILIES if family not in LINEAR_FAMILIES)

FIELD_FAMILIES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "hidden",
            "latent",
            "dropout",
            "activation",
            "epochs",
            "patience",
            "lr",
            "weight_decay",
            "batch_size",
            "noise_std",
            "mask_prob",
            "residual",
        ),
        NETWORK_FAMILIES,
    ),
    "plane_variance": ("autoencoder",),
    "kl_warmup": ("vae",),
    "variance": ("dpca",),
}
"""The families each of these settings applies to (the others apply to every family): the
linear families are fitted in closed form, with no epochs or layers."""


class InvalidSettings(ValueError):
    """Settings ``TrainConfig`` refuses: each problem a template whose ``{field}`` markers
    name settings, written as field names unless :meth:`naming` says otherwise (the CLI
    names its options)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(self.naming(lambda field: field))

    def naming(self, name: Callable[[str], str]) -> str:
        names = {field.name: name(field.name) for field in fields(TrainConfig)}
        return "invalid training settings: " + "; ".join(p.format(**names) for p in self.problems)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the model; recorded in the artifact's manifest."""

    family: str = "autoencoder"
    """autoencoder (a dense autoencoder over the window), conv (a temporal convolutional
    autoencoder, models/conv.py), vae (a variational autoencoder, models/variational.py),
    dpca or cva (linear dynamic statistics, fitted in closed form, models/linear.py)."""
    window: int = 1
    """Readings per model input (the stream's latest ``window``, flattened)."""
    hidden: tuple[int, ...] | None = None
    """Hidden layer sizes of the encoder (decoder mirrors); None: derived from the input width."""
    latent: int | None = None
    """Bottleneck size; None: about input width / 6, deliberately underpowered."""
    dropout: float = 0.1
    activation: str = "elu"
    """Hidden-layer activation: elu, relu, leaky_relu or tanh. ELU by default: it gave lower
    validation loss than ReLU on both the synthetic plant (0.0072 vs 0.0084) and TEP's
    training run (0.63 vs 0.69), and it is smooth, so readings slightly beyond the training
    range are not reconstructed by a unit switching off."""
    epochs: int = 300
    """Upper bound; early stopping usually ends training well before."""
    patience: int = 20
    """Epochs without a validation improvement before stopping (best weights are restored)."""
    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 64
    seed: int = 0
    noise_std: float = 0.2
    """Denoising: Gaussian noise added to training inputs, as a fraction of each feature's
    std (features are standardised, so this is the noise std). 0 disables."""
    mask_prob: float = 0.0
    """Denoising: probability of zeroing (setting to the training mean) each input. 0 disables."""
    plane_variance: float | None = None
    """Share of training variance a frozen linear principal plane keeps, the autoencoder then
    modelling only the residual (see PlaneResidualAutoencoder). None: a plain autoencoder.
    Off by default: on TEP it lowers missed detections but raises false alarms."""
    val_fraction: float = 0.15
    calibration_fraction: float = 0.15
    """Tail of the training file used for calibration when no calibration file is given."""
    quantile: float = 0.99
    variance: float = 0.9
    """DPCA: share of the lagged training variance its T² components keep."""
    smoothing: str = "none"
    """How the service is to smooth the scores: none, mean:N, median:N or ewma:ALPHA. The
    threshold is the quantile of calibration scores so smoothed (models/operating_point.py)."""
    kl_warmup: int = 20
    """VAE: epochs over which the KL term's weight rises from 0 to 1 (KL annealing)."""
    residual: str = "squares"
    """How a network family scores its residual window: squares (the mean of its squared
    standardised errors) or whitened (its Mahalanobis distance under the residual's
    covariance on readings the network did not learn, models/whitened.py)."""
    glitch_guard: bool = False
    """A one-reading glitch is scored once, at its own reading: a model over a window sees
    it put back to its neighbours' mean in the windows after its own (jump limits from the
    training split, service/scoring/glitches.py). Off by default: on TEP's normal
    calibration run it rewrote 2.3% of the readings, normal moves the process then answers,
    which a dynamic model flags (docs/training.md)."""

    def __post_init__(self) -> None:
        checks = [
            (self.family in FAMILIES, f"{{family}} must be one of {', '.join(FAMILIES)}"),
            (
                self.family != "cva" or self.window >= 2,
                "cva needs {window} >= 2 (it relates past readings to the next ones)",
            ),
            (0 < self.variance < 1, "{variance} must be in (0, 1)"),
            (self.kl_warmup >= 0, "{kl_warmup} must be non-negative"),
            (self.residual in RESIDUALS, f"{{residual}} must be one of {', '.join(RESIDUALS)}"),
            (
                self.residual == "squares" or self.family not in LINEAR_FAMILIES,
                "{residual} whitened needs a network family (dpca and cva whiten already)",
            ),
            (
                self.plane_variance is None or self.family == "autoencoder",
                "{plane_variance} needs {family} autoencoder",
            ),
            (self.window >= 1, "{window} must be at least 1"),
            (self.epochs >= 1, "{epochs} must be at least 1"),
            (self.patience >= 1, "{patience} must be at least 1"),
            (self.batch_size >= 1, "{batch_size} must be at least 1"),
            (0 < self.lr < math.inf, "{lr} must be positive and finite"),
            (0 <= self.weight_decay < math.inf, "{weight_decay} must be non-negative and finite"),
            (0 <= self.dropout < 1, "{dropout} must be in [0, 1)"),
            (
                self.activation in ACTIVATIONS,
                f"{{activation}} must be one of {sorted(ACTIVATIONS)}",
            ),
            (0 <= self.noise_std < math.inf, "{noise_std} must be non-negative and finite"),
            (0 <= self.mask_prob < 1, "{mask_prob} must be in [0, 1)"),
            (0 < self.val_fraction < 1, "{val_fraction} must be in (0, 1)"),
            (0 <= self.calibration_fraction < 1, "{calibration_fraction} must be in [0, 1)"),
            (
                self.val_fraction + self.calibration_fraction < 1,
                "{val_fraction} + {calibration_fraction} must be < 1",
            ),
            (0 < self.quantile < 1, "{quantile} must be in (0, 1)"),
            (
                self.plane_variance is None or 0 < self.plane_variance < 1,
                "{plane_variance} must be in (0, 1)",
            ),
            (self.latent is None or self.latent >= 1, "{latent} must be at least 1"),
            (
                self.hidden is None or all(h >= 1 for h in self.hidden),
                "{hidden} sizes must be >= 1",
            ),
        ]
        try:
            parse_smoothing(self.smoothing)
        except ValueError as exc:  # its text holds the user's value: no markers in it
            text = str(exc).removeprefix("smoothing")
            checks.append((False, "{smoothing}" + text.replace("{", "{{").replace("}", "}}")))
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise InvalidSettings(problems)

    def applied(self) -> dict[str, Any]:
        """The settings that apply to this family, as the manifest records them."""
        return {
            name: value
            for name, value in asdict(self).items()
            if self.family in FIELD_FAMILIES.get(name, FAMILIES)
        }

    def resolved(self, n_sensors: int) -> TrainConfig:
        """This config with the width-derived defaults filled in, as actually trained."""
        if self.family in LINEAR_FAMILIES:
            return self
        n_inputs = n_sensors if self.family == "conv" else self.window * n_sensors
        latent = default_latent(n_inputs) if self.latent is None else self.latent
        hidden = default_hidden(n_inputs, latent) if self.hidden is None else tuple(self.hidden)
        return TrainConfig(**{**asdict(self), "latent": latent, "hidden": hidden})
