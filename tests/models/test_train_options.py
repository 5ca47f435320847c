"""From train's options to what it trains (models/train_options.py): the candidates the
command builds and the options it refuses as changing nothing."""

from __future__ import annotations

import argparse

import pytest

from models.selection import copies_input
from models.train_options import config_from_args, selection_configs, unused_options
from models.train_parser import add_arguments


def parse(*options: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--data", "x.csv", *options])


@pytest.mark.parametrize("window", [[], ["--window", "1"], ["--window", "2"]])
def test_the_commands_candidates_on_one_sensor_hold_no_copying_autoencoder(
    window: list[str],
) -> None:
    """train's command builds its candidates itself: it passes over the same models."""
    args = parse(*window)
    pool = selection_configs(args, config_from_args(args), memory=20, n_sensors=1)
    assert pool and not any(copies_input(config, 1) for config in pool)
    assert any(config.family == "dpca" for config in pool)
    eight = selection_configs(args, config_from_args(args), memory=20, n_sensors=8)
    assert any(config.family == "autoencoder" for config in eight)  # wide enough there


@pytest.mark.parametrize(
    ("options", "family"),
    [(["--kl-warmup", "3"], "vae"), (["--epochs", "3"], "autoencoder"), ([], None)],
)
def test_with_family_auto_an_option_of_one_network_names_it(
    options: list[str], family: str | None
) -> None:
    """--kl-warmup means the VAE (the autoencoder would ignore it), any other network option
    the autoencoder; without one, selection weighs every family."""
    args = parse(*options)
    pool = selection_configs(args, config_from_args(args), memory=20, n_sensors=8)
    if family is None:
        assert len({config.family for config in pool}) > 2
    else:
        assert [config.family for config in pool] == [family]
    assert unused_options(args, str) is None


def test_options_for_a_family_in_the_pool_are_used() -> None:
    assert unused_options(parse("--families", "autoencoder,cva", "--epochs", "5"), str) is None
    assert unused_options(parse("--families", "dpca,cva", "--epochs", "5"), str) is not None
