"""``python -m models train``'s options: what each means and its default (the settings
themselves are models.train_config's TrainConfig; train_options turns the parsed options
into them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from models import ignored_columns
from models.network import ACTIVATIONS
from models.train_config import FAMILIES, TrainConfig
from models.train_options import family_list
from models.whitened import RESIDUALS


class DefaultsWhereThereAreSome(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, but not "(default: None)" for options whose help says what
    happens when they are left out."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of ``train``, in groups (data, artifact, model)."""
    defaults = TrainConfig()
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, required=True, help=".csv, .dat/.txt or .npy file")
    data.add_argument("--transpose", action="store_true", help="--data is sensors x readings")
    data.add_argument(
        "--calibration-data",
        type=Path,
        help="normal readings from another run or period for the threshold (recommended)",
    )
    data.add_argument(
        "--calibration-transpose", action="store_true", help="--calibration-data is transposed"
    )
    ignored_columns.add_option(data, "--data and --calibration-data")
    out = parser.add_argument_group("artifact")
    out.add_argument("--out", type=Path, default=Path("models"), help="models folder")
    out.add_argument(
        "--name", help="model name (default: the --data file's name, e.g. plant.csv -> plant)"
    )
    out.add_argument(
        "--version",
        help="model version (default: one above the highest numbered version of NAME in --out, "
        "or 1)",
    )
    out.add_argument("--force", action="store_true", help="overwrite an existing artifact")
    model = parser.add_argument_group("model and training")
    model.add_argument(
        "--family",
        choices=("auto", *FAMILIES),
        default="auto",
        help="model family; auto tries a bounded set of candidates and keeps the one the "
        "selection rule picks: within one standard error of the most faults injected into "
        "the calibration run caught, then of the soonest, then the cheapest "
        "(docs/training.md)",
    )
    model.add_argument(
        "--families",
        type=family_list,
        help="with --family auto: choose by the same rule among these families only "
        "(comma-separated, e.g. autoencoder,conv,vae), each over 2 readings, half the "
        "data's memory and all of it (and 1 for autoencoder and vae), the networks with "
        "both --residual statistics",
    )
    model.add_argument(
        "--residual",
        choices=RESIDUALS,
        help="how a network scores its residual: the mean of its squares (default), or "
        "whitened by its covariance on readings it did not learn (models/whitened.py); with "
        "--families, only candidates scored so",
    )
    model.add_argument(
        "--window",
        type=int,
        help="readings per input (default: chosen with the family, from the data's own "
        "autocorrelation; 1 for --family autoencoder)",
    )
    model.add_argument(
        "--hidden", type=int, nargs="+", help="hidden sizes (default: ~2/3 of input width)"
    )
    model.add_argument("--latent", type=int, help="bottleneck size (default: input width / 6)")
    model.add_argument(
        "--dropout", type=float, default=defaults.dropout, help="dropout rate of hidden layers"
    )
    model.add_argument(
        "--activation",
        choices=sorted(ACTIVATIONS),
        default=defaults.activation,
        help="hidden-layer activation",
    )
    model.add_argument(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help="training epochs at most (early stopping usually ends sooner)",
    )
    model.add_argument(
        "--patience",
        type=int,
        default=defaults.patience,
        help="epochs without a validation improvement before stopping (best weights kept)",
    )
    model.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate")
    model.add_argument(
        "--weight-decay", type=float, default=defaults.weight_decay, help="Adam weight decay"
    )
    model.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="readings per training step"
    )
    model.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of weight initialisation, shuffling and the injected faults",
    )
    model.add_argument(
        "--noise-std",
        type=float,
        default=defaults.noise_std,
        help="denoising noise, as a fraction of feature std (0: off)",
    )
    model.add_argument(
        "--mask-prob", type=float, default=defaults.mask_prob, help="denoising masking (0: off)"
    )
    model.add_argument(
        "--plane-variance",
        type=float,
        default=defaults.plane_variance,
        help="keep this share of training variance in a frozen linear PCA plane and model only "
        "the residual with the autoencoder (robust to wider operating ranges; default: off)",
    )
    model.add_argument(
        "--glitch-guard",
        action=argparse.BooleanOptionalAction,
        default=defaults.glitch_guard,
        help="a model over a window scores a one-reading glitch once, at its own reading: "
        "the windows after it see it put back to its neighbours' mean; selection weighs "
        "candidates with it (docs/training.md, also on what it rewrote of a normal run)",
    )
    model.add_argument(
        "--smoothing",
        default="auto",
        help="how the service is to smooth scores, and so the threshold: none, mean:N, "
        "median:N or ewma:ALPHA; auto weighs a few on the injected faults (docs/training.md)",
    )
    model.add_argument(
        "--kl-warmup",
        type=int,
        default=defaults.kl_warmup,
        help="--family vae: epochs over which the KL term's weight rises from 0 to 1",
    )
    model.add_argument(
        "--val-fraction",
        type=float,
        default=defaults.val_fraction,
        help="share of --data held out for early stopping",
    )
    model.add_argument(
        "--calibration-fraction",
        type=float,
        default=defaults.calibration_fraction,
        help="tail of --data used for calibration when --calibration-data is absent",
    )
    model.add_argument(
        "--quantile",
        type=float,
        default=defaults.quantile,
        help="quantile of calibration scores set as the threshold (1 - the false-alarm rate)",
    )


def option_name(field: str) -> str:
    """The option that sets a ``TrainConfig`` field (the field's own name when none does).

    >>> option_name("plane_variance"), option_name("variance")
    ('--plane-variance', 'variance')
    """
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for action in parser._actions:  # argparse lists its arguments nowhere public
        if action.dest == field and action.option_strings:
            return max(action.option_strings, key=len)
    return field
