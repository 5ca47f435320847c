"""What the reports call a model and what they advise for it: its family, window and declared
smoothing, as its manifest (or a freshly trained model's settings) records them.

A report that called every model "autoencoder" gave a CVA over 8 readings advice about
latent sizes, a window it already had and an option only the autoencoder takes; here each
piece of advice names only what applies to the model it is about.

>>> ModelForm("cva", 8, "ewma:0.3").name
'cva over 8 readings'
>>> ModelForm("autoencoder", 1, None).name
'autoencoder over 1 reading'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.separation import RECONSTRUCTION_ADVICE, Advice

SMOOTHED_WINDOW_ADVICE = (
    "A statistic over a window of readings (train --window) raises the effect size of faults "
    "that are small reading by reading."
)

if TYPE_CHECKING:
    from models.train import TrainResult
    from service.scoring.artifact import Artifact


@dataclass(frozen=True)
class ModelForm:
    family: str
    window: int
    smoothing: str | None
    """The declared smoothing's label (``ewma:0.3``, ``none``); None when the model declares
    none, so the service smooths its scores as its own settings say."""
    plane_variance: float | None = None

    @classmethod
    def of(cls, model: TrainResult | Artifact) -> ModelForm:
        from models.train import TrainResult

        if isinstance(model, TrainResult):
            config = model.config
            return cls(config.family, model.window, config.smoothing, config.plane_variance)
        manifest = model.manifest
        training = manifest.training
        plane = training.get("plane_variance")
        return cls(
            # Artifacts written before there were families are autoencoders.
            str(training.get("family", "autoencoder")),
            manifest.window,
            None if manifest.smoothing is None else manifest.smoothing.label(),
            None if plane is None else float(plane),
        )

    @property
    def name(self) -> str:
        readings = "reading" if self.window == 1 else "readings"
        return f"{self.family} over {self.window} {readings}"

    @property
    def smoothed_as(self) -> str:
        """Its declared smoothing in words.

        >>> ModelForm("cva", 8, "none").smoothed_as, ModelForm("cva", 8, "ewma:0.3").smoothed_as
        ('without smoothing', 'with ewma:0.3')
        """
        if self.smoothing is None:
            return "smoothed as the service's settings say"
        return "without smoothing" if self.smoothing == "none" else f"with {self.smoothing}"

    @property
    def smoothed(self) -> bool:
        """Whether it declares a smoothing other than none."""
        return self.smoothing not in (None, "none")

    def _longer(self) -> str:
        """The window and smoothing it has, and what longer ones would be."""
        if self.smoothed:
            return (
                f"It already reads {self.window} readings per input and smooths its scores "
                f"({self.smoothing}): a longer window (train --window more than {self.window}) "
                "or a longer smoothing (train --smoothing)"
            )
        return (
            f"It already reads {self.window} readings per input: a longer window (train "
            f"--window more than {self.window}) or smoothing before the threshold (train "
            "--smoothing)"
        )

    def advice(self) -> Advice:
        """What the verdicts advise for this model (only options its family takes)."""
        from models.train_config import LINEAR_FAMILIES  # torch: imported when a report is made

        if self.family in LINEAR_FAMILIES:
            capacity = (
                f"{self.family.upper()} is a linear statistic fitted in closed form (nothing "
                "in it learns to copy faults): what it does not separate moves the readings "
                "within the variation it takes for normal."
            )
        else:
            capacity = RECONSTRUCTION_ADVICE
        if self.window == 1:
            if self.smoothed:  # the smoothing is there already: only a window is left
                return Advice(capacity=capacity, weak=SMOOTHED_WINDOW_ADVICE)
            return Advice(capacity=capacity)
        weak = (
            f"{self._longer()} may raise the effect size of faults that are small reading by "
            "reading, at the cost of later alerts."
        )
        invisible = (
            "If the PCA baseline does not separate it either, this kind barely shows in single "
            f"readings or in windows of {self.window}: it may not be separable for this model; "
            f"a longer window (train --window more than {self.window}) is what is left to try."
        )
        return Advice(capacity=capacity, weak=weak, invisible=invisible)

    def range_advice(self) -> str:
        """What to do when the model alarms on a merely wider operating range."""
        advice = "train on data covering the plant's whole range"
        if self.family == "autoencoder" and self.plane_variance is None:
            advice += ", or with --plane-variance 0.9 (an autoencoder option)"
        return advice + "."
