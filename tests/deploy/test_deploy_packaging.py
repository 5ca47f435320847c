"""pyproject.toml builds without deprecation warnings: the license is an SPDX expression
(the ``{ text = ... }`` table form is deprecated, and setuptools stops accepting it in
2027), and the build backend is pinned to a range that reads the expression."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path
from typing import Any

import pytest
from docs_support import REPO
from packaging.requirements import Requirement
from packaging.version import Version
from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

PYPROJECT = REPO / "pyproject.toml"
# The first setuptools that reads `project.license` as an SPDX expression.
SPDX_SETUPTOOLS = Version("77")


def _pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def test_the_license_is_an_spdx_expression_not_a_table() -> None:
    project = _pyproject()["project"]
    assert project["license"] == "Apache-2.0"
    classifiers = project.get("classifiers", [])
    # setuptools refuses License :: classifiers beside an expression
    assert not [c for c in classifiers if c.startswith("License ::")]


def test_the_build_backend_is_pinned_to_a_range_that_reads_it() -> None:
    requires = [Requirement(r) for r in _pyproject()["build-system"]["requires"]]
    (setuptools,) = [r for r in requires if r.name == "setuptools"]
    spec = setuptools.specifier
    assert not spec.contains(Version("76.1")), "accepts a setuptools without SPDX licenses"
    assert spec.contains(SPDX_SETUPTOOLS)
    assert any(s.operator in {"<", "<="} for s in spec), "no upper bound: a future release "
    "could break fresh installs and the image build"


def test_setuptools_reads_the_project_table_without_a_warning() -> None:
    """The installed setuptools applies the [project] table as a build would; a deprecated
    form (the license table, for one) warns, and warnings are errors here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), PYPROJECT)
    assert dist.metadata.license_expression == "Apache-2.0"


@pytest.mark.parametrize("table", ['{ text = "Apache-2.0" }', '{ file = "LICENSE" }'])
def test_the_table_form_would_fail_the_check(tmp_path: Path, table: str) -> None:
    old = PYPROJECT.read_text().replace('license = "Apache-2.0"', f"license = {table}")
    assert old != PYPROJECT.read_text()
    (tmp_path / "pyproject.toml").write_text(old)
    (tmp_path / "LICENSE").write_text("Apache License 2.0\n")
    (tmp_path / "README.md").write_text("readme\n")
    with warnings.catch_warnings(), pytest.raises(Warning, match="license"):
        warnings.simplefilter("error")
        apply_configuration(Distribution(), tmp_path / "pyproject.toml")
