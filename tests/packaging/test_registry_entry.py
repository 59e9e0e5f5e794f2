"""server.json, the MCP registry entry: the distribution, its variables and its command line."""

from __future__ import annotations

import re
import typing
from typing import Any

import pytest

from m2_tools.settings import ENV_VARS, Settings

from ._support import REPO, SERVER_JSON, load_json, parse_serve

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")

#: Read only by the HTTP transport; the registry entry launches stdio.
HTTP_ONLY = {ENV_VARS["auth_token"]}
FIELD_OF = {variable: field for field, variable in ENV_VARS.items()}


def _server() -> dict[str, Any]:
    server: dict[str, Any] = load_json(SERVER_JSON)
    return server


def _package() -> dict[str, Any]:
    (package,) = _server()["packages"]
    return package  # type: ignore[no-any-return]


def _declared_variables() -> dict[str, dict[str, Any]]:
    declared = _package()["environmentVariables"]
    names = [variable["name"] for variable in declared]
    assert len(names) == len(set(names)), "a variable is declared twice"
    return {variable["name"]: variable for variable in declared}


def test_entry_meets_the_registry_rules_for_names_and_lengths() -> None:
    server = _server()
    assert re.fullmatch(
        r"https://static\.modelcontextprotocol\.io/schemas/[\d-]+/server\.schema\.json",
        server["$schema"],
    )
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", server["name"])
    assert 1 <= len(server["description"]) <= 100
    assert 1 <= len(server["title"]) <= 100
    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-].+)?", server["version"])


def test_readme_carries_the_mcp_name_marker_that_pypi_ownership_is_checked_by() -> None:
    markers = re.findall(r"<!--\s*mcp-name:\s*(\S+)\s*-->", (REPO / "README.md").read_text())
    assert markers == [_server()["name"]]


def test_package_is_the_pypi_distribution_whose_console_script_uvx_runs() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    package = _package()
    assert package["registryType"] == "pypi"
    assert package["identifier"] == project["name"]
    assert package["transport"] == {"type": "stdio"}
    # Why: `uvx NAME` runs the console script named like the distribution.
    assert package["runtimeHint"] == "uvx"
    assert package["identifier"] in project["scripts"]


def test_package_arguments_form_a_command_line_that_serve_accepts() -> None:
    arguments = _package()["packageArguments"]
    assert all(argument["type"] == "positional" and "value" in argument for argument in arguments)
    args = parse_serve([argument["value"] for argument in arguments])
    assert args.transport == "stdio"


def test_entry_declares_every_setting_the_code_reads_from_the_environment() -> None:
    expected = set(ENV_VARS.values()) - HTTP_ONLY
    assert set(_declared_variables()) == expected


def test_declared_defaults_are_the_settings_own_defaults() -> None:
    for name, variable in _declared_variables().items():
        field = Settings.model_fields[FIELD_OF[name]]
        if field.default is None:
            assert "default" not in variable, name
        elif variable["format"] == "number":
            assert float(variable["default"]) == field.default, name
        elif variable["format"] == "boolean":
            assert variable["default"] == str(field.default).lower(), name
        else:
            assert variable["default"] == field.default, name


def test_declared_choices_are_the_settings_literals_and_each_one_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, variable in _declared_variables().items():
        annotation = Settings.model_fields[FIELD_OF[name]].annotation
        literal = (
            list(typing.get_args(annotation))
            if typing.get_origin(annotation) is typing.Literal
            else None
        )
        assert variable.get("choices") == literal, name
        for choice in variable.get("choices", []):
            monkeypatch.setenv(name, choice)
            assert getattr(Settings(), FIELD_OF[name]) == choice


def test_secrets_are_the_settings_kept_out_of_repr_and_marked_secret() -> None:
    for name, variable in _declared_variables().items():
        secret = Settings.model_fields[FIELD_OF[name]].repr is False
        assert variable.get("isSecret", False) is secret, name
