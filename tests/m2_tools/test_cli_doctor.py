"""``m2-tools doctor`` checks the environment and the model files, and exits 1 on a failure."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from m2_tools.cli import main
from m2_tools.cli.doctor import PACKAGES, Check, collect_checks
from m2_tools.cli.tested_versions import NEWEST_TESTED
from m2_tools.settings import ENV_VARS, Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _doctor_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["doctor", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def _use_hub_cache(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    # huggingface_hub reads HF_HUB_CACHE once, at import; its constant is what counts.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(path))


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in report["checks"]}


def test_passes_on_the_fixture_checkpoint(
    fixture_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", "--model", str(fixture_dir / "checkpoint"), "--device", "cpu"])

    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    for name in ("python", "torch", "transformers", "cuda", "ram", "model", "tensors"):
        assert any(line.split()[:2] == ["ok", name] for line in lines), name
    assert not any(line.split()[:1] == ["fail"] for line in lines)


def test_fails_on_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--model", str(tmp_path / "absent")])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert any(line.split()[:2] == ["fail", "model"] for line in lines)
    assert any(line.strip().startswith("fix:") for line in lines)


def test_json_report_lists_every_check(
    fixture_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _doctor_json(capsys, "--model", str(fixture_dir / "checkpoint"))

    assert code == 0
    assert report["ok"] is True
    checks = _by_name(report)
    assert {"python", "torch", "mcp", "langchain-core", "cuda", "flash-attn", "ram"} <= set(checks)
    assert {"model", "config", "weights", "tensors", "memory"} <= set(checks)
    for check in report["checks"]:
        assert set(check) == {"name", "status", "detail", "fix"}
        assert check["status"] in {"ok", "warn", "fail"}
        assert check["status"] == "ok" or check["fix"]


def test_reports_tensors_that_do_not_match_the_config(
    fixture_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(fixture_dir / "checkpoint", broken)
    config = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    config["llm_config"]["num_hidden_layers"] = 3
    (broken / "config.json").write_text(json.dumps(config), encoding="utf-8")

    code, report = _doctor_json(capsys, "--model", str(broken))

    assert code == 1
    assert _by_name(report)["tensors"]["status"] == "fail"
    assert _by_name(report)["config"]["status"] == "ok"


def test_reports_a_missing_shard(
    fixture_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(fixture_dir / "checkpoint", broken)
    (broken / "model-00002-of-00002.safetensors").unlink()

    code, report = _doctor_json(capsys, "--model", str(broken))

    assert code == 1
    assert _by_name(report)["weights"]["status"] == "fail"


def test_hub_id_missing_from_the_cache_fails_with_a_download_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_hub_cache(monkeypatch, tmp_path / "empty-cache")

    code, report = _doctor_json(capsys, "--model", "example-org/not-cached")

    assert code == 1
    model = _by_name(report)["model"]
    assert model["status"] == "fail"
    assert "example-org/not-cached" in model["fix"]


def test_resolves_a_hub_id_from_the_local_cache(
    fixture_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--example-org--m2-tiny"
    shutil.copytree(fixture_dir / "checkpoint", repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision, encoding="utf-8")
    _use_hub_cache(monkeypatch, tmp_path / "hub")

    code, report = _doctor_json(capsys, "--model", "example-org/m2-tiny")

    assert code == 0
    model = _by_name(report)["model"]
    assert model["status"] == "ok"
    assert revision[:12] in model["detail"]


def test_a_device_that_is_absent_fails(
    fixture_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")

    code, report = _doctor_json(
        capsys, "--model", str(fixture_dir / "checkpoint"), "--device", "cuda:0"
    )

    assert code == 1
    assert _by_name(report)["device"]["status"] == "fail"


def test_invalid_environment_is_reported_not_raised(
    fixture_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("M2_ALLOW_URLS", "perhaps")

    code, report = _doctor_json(capsys, "--model", str(fixture_dir / "checkpoint"))

    assert code == 1
    assert _by_name(report)["settings"]["status"] == "fail"
    assert _by_name(report)["tensors"]["status"] == "ok"


def _package_check(newest_tested: dict[str, str], name: str, fixture_dir: Path) -> Check:
    settings = Settings(model=str(fixture_dir / "checkpoint"), device="cpu")
    checks = collect_checks(settings, newest_tested=newest_tested)
    return next(check for check in checks if check.name == name)


def test_warns_without_failing_when_a_package_is_newer_than_the_newest_tested(
    fixture_dir: Path,
) -> None:
    settings = Settings(model=str(fixture_dir / "checkpoint"), device="cpu")
    checks = collect_checks(settings, newest_tested={"transformers": "5.0.0", "mcp": "2.0"})

    by_name = {check.name: check for check in checks}
    for name, tested in (("transformers", "5.0.0"), ("mcp", "2.0")):
        assert by_name[name].status == "warn"
        assert f"{name}=={tested}" in by_name[name].fix
    assert not any(check.status == "fail" for check in checks)


def test_a_package_no_newer_than_the_newest_tested_is_ok(fixture_dir: Path) -> None:
    installed = importlib.metadata.version("langchain-core")

    for tested in (installed, "999.0"):
        check = _package_check({"langchain-core": tested}, "langchain-core", fixture_dir)
        assert check.status == "ok"


def test_the_newest_tested_versions_are_those_of_the_lock() -> None:
    lock = {}
    for line in (REPO / "ci" / "known-good.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            lock[name] = version

    assert set(NEWEST_TESTED) == {"transformers", "mcp", "langchain-core"}
    assert {name: lock[name] for name in NEWEST_TESTED} == NEWEST_TESTED


def test_checks_the_version_ranges_that_pyproject_declares() -> None:
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {}
    for text in project["dependencies"]:
        requirement = Requirement(text)
        bounds = {spec.operator: spec.version for spec in requirement.specifier}
        declared[canonicalize_name(requirement.name)] = (bounds.get(">="), bounds.get("<"))

    checked = {name: (low, high) for name, (low, high, _, _) in PACKAGES.items()}
    assert checked == {name: declared[name] for name in checked}
    assert set(declared) - set(checked) <= {"tqdm"}
