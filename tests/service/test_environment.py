"""ANOMALY_* variables that name no setting: a typo refused in production, the rest said."""

from __future__ import annotations

import pytest

from service.environment import UnknownVariables, check_variables, unknown_variables
from service.settings import Settings

# What Kubernetes gives every pod of a namespace holding a Service named anomaly-service
# (service links), beside a setting of the image.
SERVICE_LINKS = {
    "ANOMALY_SERVICE_SERVICE_HOST": "10.0.0.7",
    "ANOMALY_SERVICE_SERVICE_PORT": "8000",
    "ANOMALY_SERVICE_SERVICE_PORT_HTTP": "8000",
    "ANOMALY_SERVICE_PORT": "tcp://10.0.0.7:8000",
    "ANOMALY_SERVICE_PORT_8000_TCP": "tcp://10.0.0.7:8000",
    "ANOMALY_SERVICE_PORT_8000_TCP_ADDR": "10.0.0.7",
    "ANOMALY_SERVICE_PORT_8000_TCP_PORT": "8000",
    "ANOMALY_SERVICE_PORT_8000_TCP_PROTO": "tcp",
    "ANOMALY_ENV": "production",
}


def test_a_misspelt_setting_is_named_with_the_setting_it_resembles() -> None:
    environ = {"ANOMALY_REDIS_TIMEOUT": "3", "ANOMALY_PORT": "8001", "PATH": "/bin"}
    assert unknown_variables(environ) == {"ANOMALY_REDIS_TIMEOUT": "ANOMALY_REDIS_TIMEOUT_S"}
    # as settings read them: in any case
    assert unknown_variables({"anomaly_store_ulr": "x"}) == {
        "anomaly_store_ulr": "ANOMALY_STORE_URL"
    }


def test_production_refuses_a_typo_and_development_says_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    typo = {"ANOMALY_STORE_ULR": "postgresql://db/anomaly"}
    with pytest.raises(UnknownVariables, match=r"ANOMALY_STORE_ULR \(did you mean ANOMALY_STORE"):
        check_variables(Settings(env="production"), typo)
    with caplog.at_level("WARNING", logger="service.environment"):
        check_variables(Settings(), typo)
    assert "ANOMALY_STORE_ULR (did you mean ANOMALY_STORE_URL?)" in caplog.text


def test_kubernetes_service_links_are_not_taken_for_settings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A production pod beside a Service named anomaly-service starts (it looped on exit 2)."""
    assert unknown_variables(SERVICE_LINKS) == {}
    check_variables(Settings(env="production"), SERVICE_LINKS)


def test_a_name_like_no_setting_is_said_not_refused(caplog: pytest.LogCaptureFixture) -> None:
    """Another tool's variable sharing the prefix is no typo of a setting."""
    other = {"ANOMALY_GRAFANA_DASHBOARD_UID": "plant"}
    assert unknown_variables(other) == {"ANOMALY_GRAFANA_DASHBOARD_UID": None}
    with caplog.at_level("WARNING", logger="service.environment"):
        check_variables(Settings(env="production"), other)
    assert "ANOMALY_GRAFANA_DASHBOARD_UID" in caplog.text and "did you mean" not in caplog.text
