"""Ground truth of an evaluation file: where it is, and where it only seems to be missing."""

from __future__ import annotations

import numpy as np

from models.evaluate_data import labelled
from models.readings import Readings

SENSORS = ["flow", "valve_open"]


def anomalous(sensors: list[str], values: list[list[float]], **labels: list[object]) -> Readings:
    return Readings(
        values=np.array(values, dtype=np.float64),
        sensors=sensors,
        timestamps=None,
        source="run.csv",
        labels={name: np.array(column) for name, column in labels.items()},
    )


def assumption(readings: Readings) -> str:
    return labelled(
        readings,
        SENSORS,
        labels_column="anomaly",
        kinds_column="anomaly_kind",
        default_anomalous=True,
    ).assumption


def test_columns_that_look_like_labels_are_named_with_the_option() -> None:
    """A `label` or `is_fault` column beside no `anomaly` one: every reading counted as
    anomalous, and the warning did not say the labels were there under another name."""
    said = "run.csv has no 'anomaly' column: every reading in it counts as anomalous"
    # The model's own 0/1 sensor and the kinds column are no labels.
    plain = anomalous(
        ["flow", "valve_open", "speed"], [[1.5, 0, 3.0], [2.5, 1, 4.0]], anomaly_kind=["", "x"]
    )
    assert assumption(plain) == said
    is_fault = anomalous(["flow", "valve_open", "is_fault"], [[1.5, 0, 0], [2.5, 1, 1]])
    assert assumption(is_fault) == (
        f"{said}; its column 'is_fault' looks like labels: pass --labels-column is_fault to use it"
    )
    named = anomalous(SENSORS, [[1.5, 0], [2.5, 1]], label=[0.0, 1.0], changepoint=[0.0, 1.0])
    assert assumption(named) == (
        f"{said}; its columns 'label', 'changepoint' look like labels: pass --labels-column "
        "with the one to use"
    )
    spaced = anomalous(["flow", "valve_open", "Fault flag"], [[1.5, 0, 1], [2.5, 1, 1]])
    assert "pass --labels-column 'Fault flag' to use it" in assumption(spaced)
    headerless = anomalous(["x01", "x02"], [[1.5, 0], [2.5, 1]])  # positionally the model's
    assert assumption(headerless) == said.replace("run.csv", headerless.source)
