"""The MCPB bundle: mcpb validates and packs it, and the command a host starts from it serves."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from m2_tools import TOOLS
from m2_tools.cli.options import settings_from_args
from m2_tools.settings import ENV_VARS

from ._support import (
    BUNDLE,
    CHECKPOINT,
    IMAGES,
    LAUNCHER,
    load_json,
    load_module,
    mcpb,
    parse_serve,
    resolve_bundle_command,
    run_tool,
)

CALL_TIMEOUT_S = 120.0
PLACEHOLDER = re.compile(r"\$\{user_config\.([A-Za-z0-9_]+)\}")
launcher = load_module(LAUNCHER, "m2_tools_bundle_launcher")


def _manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = load_json(BUNDLE / "manifest.json")
    return manifest


def _host_command(user_config: dict[str, Any]) -> dict[str, Any]:
    resolved = resolve_bundle_command(user_config)
    assert resolved is not None, "the host would not start the bundle"
    return resolved


def _serve_settings(resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The settings `serve` ends up with for the host's command, args and env."""
    for name in [name for name in os.environ if name.startswith("M2_")]:
        monkeypatch.delenv(name)
    for name, value in launcher.cleaned_environment(resolved["env"]).items():
        monkeypatch.setenv(name, value)
    return settings_from_args(parse_serve(launcher.serve_argv(resolved["args"][1:])))


def test_mcpb_validate_accepts_the_manifest() -> None:
    done = run_tool(mcpb(), "validate", str(BUNDLE / "manifest.json"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_mcpb_pack_builds_a_bundle_of_the_manifest_icon_and_launcher(tmp_path: Path) -> None:
    output = tmp_path / "m2-tools.mcpb"
    done = run_tool(mcpb(), "pack", str(BUNDLE), str(output))
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(output) as bundle:
        assert sorted(bundle.namelist()) == ["icon.png", "manifest.json", "server/launch.py"]
        assert json.loads(bundle.read("manifest.json")) == _manifest()


def test_manifest_lists_the_tools_the_server_offers() -> None:
    assert [tool["name"] for tool in _manifest()["tools"]] == list(TOOLS)


def test_manifest_sets_only_variables_the_code_reads_each_from_a_user_setting() -> None:
    config = _manifest()["server"]["mcp_config"]
    user_config = _manifest()["user_config"]
    assert set(config["env"]) <= set(ENV_VARS.values())
    for value in config["env"].values():
        assert PLACEHOLDER.fullmatch(value), value
    used = set(PLACEHOLDER.findall(json.dumps(config)))
    assert used == set(user_config), "a setting is asked for but never passed, or vice versa"


def test_manifest_asks_for_the_model_the_allowed_folders_and_the_device() -> None:
    manifest = _manifest()
    env = manifest["server"]["mcp_config"]["env"]
    assert env[ENV_VARS["model"]] == "${user_config.model}"
    assert env[ENV_VARS["device"]] == "${user_config.device}"
    folders = manifest["user_config"]["allowed_dirs"]
    assert (folders["type"], folders["multiple"]) == ("directory", True)
    assert manifest["server"]["entry_point"] == LAUNCHER.relative_to(BUNDLE).as_posix()


def test_host_command_for_chosen_settings_is_a_serve_command_line_with_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folders = [str(tmp_path / "figures"), str(tmp_path / "scans with spaces")]
    resolved = _host_command(
        {
            "python": sys.executable,
            "model": str(CHECKPOINT),
            "allowed_dirs": folders,
            "device": "cpu",
            "allow_urls": False,
        }
    )
    assert resolved["command"] == sys.executable
    assert Path(resolved["args"][0]) == LAUNCHER
    settings = _serve_settings(resolved, monkeypatch)
    assert settings.allowed_dirs == tuple(Path(folder).resolve() for folder in folders)
    assert (settings.model, settings.device, settings.allow_urls) == (str(CHECKPOINT), "cpu", False)


def test_settings_left_unset_or_cleared_fall_back_to_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = settings_from_args(parse_serve(["serve"]))
    for user_config in ({"python": sys.executable}, {"python": sys.executable, "model": ""}):
        settings = _serve_settings(_host_command(user_config), monkeypatch)
        assert settings == defaults


def test_host_starts_nothing_until_the_python_is_chosen() -> None:
    assert resolve_bundle_command({"model": "inclusionAI/M2-Reasoning"}) is None
    assert resolve_bundle_command({"python": ""}) is None


async def test_host_command_serves_the_tools_over_stdio_within_the_chosen_folders(
    tmp_path: Path,
) -> None:
    resolved = _host_command(
        {
            "python": sys.executable,
            "model": str(CHECKPOINT),
            "allowed_dirs": [str(IMAGES)],
            "device": "cpu",
        }
    )
    outside = tmp_path / "outside.png"
    shutil.copyfile(IMAGES / "rhombus.png", outside)
    params = StdioServerParameters(
        command=resolved["command"],
        args=resolved["args"],
        env={**resolved["env"], "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
    )
    question = {"question": "What is the side length?", "max_new_tokens": 16}
    with (tmp_path / "stderr.txt").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            tools = [tool.name for tool in (await client.list_tools()).tools]
            inside = await client.call_tool(
                "visual_math_reason",
                {**question, "images": [str(IMAGES / "rhombus.png")]},
                read_timeout_seconds=CALL_TIMEOUT_S,
            )
            refused = await client.call_tool(
                "visual_math_reason",
                {**question, "images": [str(outside)]},
                read_timeout_seconds=CALL_TIMEOUT_S,
            )
    assert sorted(tools) == sorted(TOOLS)
    assert not inside.is_error, inside.content
    assert refused.is_error
    error = json.loads(refused.content[0].text)["error"]  # type: ignore[union-attr]
    assert error["code"] == "image_not_allowed"


def test_launcher_in_a_python_without_m2_tools_exits_1_and_keeps_stdout_clean(
    tmp_path: Path,
) -> None:
    # -I -S: no site-packages, so m2_tools cannot be imported, as in a wrong interpreter.
    done = run_tool(sys.executable, "-I", "-S", str(LAUNCHER), str(IMAGES), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
