"""One version everywhere: pyproject, the package, ``--version``, server.json and the bundle."""

from __future__ import annotations

import pytest

import m2_tools
from m2_tools.cli import version

from ._support import BUNDLE, REPO, SERVER_JSON, load_json

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")


def _pyproject() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project


def test_package_and_cli_report_the_pyproject_version() -> None:
    declared = _pyproject()["version"]
    assert m2_tools.__version__ == declared
    assert version() == declared


def test_registry_entry_and_its_package_carry_the_pyproject_version() -> None:
    server = load_json(SERVER_JSON)
    declared = _pyproject()["version"]
    assert server["version"] == declared
    assert [package["version"] for package in server["packages"]] == [declared]


def test_bundle_manifest_and_license_file_carry_the_pyproject_license() -> None:
    manifest = load_json(BUNDLE / "manifest.json")
    project = _pyproject()
    license_ = project["license"]
    declared = license_["text"] if isinstance(license_, dict) else license_
    assert manifest["version"] == project["version"]
    assert manifest["license"] == declared == "Apache-2.0"
    heading = (REPO / "LICENSE").read_text().split()[:4]
    assert heading == ["Apache", "License", "Version", "2.0,"]
