"""Where the real data is, and markers that skip a test clearly when it is absent."""

from __future__ import annotations

import pytest

from models.benchmarks.common import default_data_dir

DATA_DIR = default_data_dir()


def _needs(path: str, what: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not (DATA_DIR / path).exists(),
        reason=f"{what} not found under {DATA_DIR} (set SENSOR_DATA_DIR to the shared data folder)",
    )


needs_tep = _needs("tep/d00.dat", "TEP data")
needs_skab = _needs("skab/valve1", "SKAB data")
needs_nab = _needs("nab/labels/combined_windows.json", "NAB data")
