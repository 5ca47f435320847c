"""From ``python -m models train``'s options to what it trains: the settings of one model, and
the candidates selection weighs when the options leave a choice."""

from __future__ import annotations

import argparse
from dataclasses import replace

from models.selection import candidates, copies_input, horizons
from models.train_config import FAMILIES, TrainConfig


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The settings; family and window are those given, or the defaults selection starts
    from (see :func:`selection_configs`)."""
    family = "autoencoder" if args.family == "auto" else args.family
    window = args.window
    if window is None:
        window = 1 if family in ("autoencoder", "vae") else 2
    return TrainConfig(
        family=family,
        window=window,
        hidden=None if args.hidden is None else tuple(args.hidden),
        latent=args.latent,
        dropout=args.dropout,
        activation=args.activation,
        epochs=args.epochs,
        patience=args.patience,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        seed=args.seed,
        noise_std=args.noise_std,
        mask_prob=args.mask_prob,
        plane_variance=args.plane_variance,
        val_fraction=args.val_fraction,
        calibration_fraction=args.calibration_fraction,
        quantile=args.quantile,
        kl_warmup=args.kl_warmup,
        residual=TrainConfig().residual if args.residual is None else args.residual,
        smoothing="none" if args.smoothing == "auto" else args.smoothing,
        glitch_guard=args.glitch_guard,
    )


AUTOENCODER_OPTIONS = (
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
    "plane_variance",
    "kl_warmup",
    "residual",
)
"""Settings only the autoencoder has: giving one says which family is meant."""


def _autoencoder_options(args: argparse.Namespace) -> list[str]:
    defaults = TrainConfig()
    return [
        name
        for name in AUTOENCODER_OPTIONS
        if getattr(args, name) is not None and getattr(args, name) != getattr(defaults, name)
    ]


def family_list(text: str) -> tuple[str, ...]:
    """``--families``: comma-separated names of FAMILIES.

    >>> family_list("conv, autoencoder")
    ('conv', 'autoencoder')
    """
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FAMILIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected comma-separated families among {', '.join(FAMILIES)}"
        )
    return names


def selection_configs(
    args: argparse.Namespace, base: TrainConfig, memory: int, n_sensors: int
) -> list[TrainConfig]:
    """What to train: one config when the family and window are both given (or the family
    is the autoencoder, whose window defaults to 1), otherwise the candidates they allow.
    With --family auto, an autoencoder-only option (--epochs, --hidden, ...) means the
    autoencoder."""
    family = args.family
    if args.families is not None:  # checked in run(): only with --family auto
        pool = [
            config
            for config in candidates(base, memory, args.families)
            if not copies_input(config, n_sensors)
            and (args.window is None or config.window == args.window)
        ]
        if args.residual is not None:  # --residual, even squares, narrows the pool too
            pool = [config for config in pool if config.residual == args.residual]
        return pool
    if family == "auto" and _autoencoder_options(args):
        family = "autoencoder"
    if family != "auto" and (args.window is not None or family in ("autoencoder", "vae")):
        return [base]
    if family == "conv":  # one network to train: over the process's memory
        return [replace(base, family="conv", window=horizons(memory)[-1])]
    pool = candidates(base, memory)
    if family != "auto":
        pool = [config for config in pool if config.family == family]
    if args.window is not None:  # --family auto over one window: every family that fits
        pool = [
            replace(base, family=each, window=args.window)
            for each in FAMILIES
            if each != "cva" or args.window >= 2
        ]
    # Selection passes over autoencoders that can copy their input, as it does without the
    # command (a model forced with --family and --window is trained, with its warning).
    return [config for config in pool if not copies_input(config, n_sensors)]
