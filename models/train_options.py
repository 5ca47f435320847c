"""From ``python -m models train``'s options to what it trains: the settings of one model, and
the candidates selection weighs when the options leave a choice."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace

from models.selection import candidates, copies_input, horizons
from models.train_config import FAMILIES, FIELD_FAMILIES, LINEAR_FAMILIES, TrainConfig


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The settings; family and window are those given, or the defaults selection starts
    from (see :func:`selection_configs`)."""
    family = args.family
    if family == "auto":
        family = _implied_family(args) or "autoencoder"
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


def _given(args: argparse.Namespace) -> list[str]:
    """The options of FIELD_FAMILIES set to something other than their default (a setting
    with no option, such as DPCA's variance, is never given)."""
    defaults = TrainConfig()
    return [
        name
        for name in FIELD_FAMILIES
        if getattr(args, name, None) is not None and getattr(args, name) != getattr(defaults, name)
    ]


def _implied_family(args: argparse.Namespace) -> str | None:
    """With --family auto (and no --families), the family the options given name: the VAE
    for --kl-warmup, otherwise the autoencoder for any network option; None for none."""
    given = _given(args)
    if args.family != "auto" or args.families is not None or not given:
        return None
    return "vae" if "kl_warmup" in given else "autoencoder"


def unused_options(args: argparse.Namespace, option_name: Callable[[str], str]) -> str | None:
    """Why options given would change nothing that is trained, or None: an option no family
    to be trained uses (``--epochs`` with ``--family cva``, ``--kl-warmup`` with
    ``--families autoencoder,conv``)."""
    given = _given(args)
    if args.families is not None:
        families: tuple[str, ...] = args.families
    elif args.family != "auto":
        families = (args.family,)
    else:  # --family auto: the options given name the family (_implied_family)
        return None
    unused = [name for name in given if not set(FIELD_FAMILIES[name]) & set(families)]
    if not unused:
        return None
    trained = ", ".join(families)
    return "; ".join(
        f"{option_name(name)} applies to {', '.join(FIELD_FAMILIES[name])} only, not to "
        f"{trained}" + (" (fitted in closed form)" if set(families) <= set(LINEAR_FAMILIES) else "")
        for name in unused
    )


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
    With --family auto, a network option (--epochs, --hidden, ...) means the autoencoder,
    --kl-warmup the VAE."""
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
    family = _implied_family(args) or family
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
