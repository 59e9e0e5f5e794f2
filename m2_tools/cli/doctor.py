"""``m2-tools doctor``: check the environment and the model files, and say what to fix.

Each check ends ``ok``, ``warn`` or ``fail`` with a one-line detail and, unless
ok, a one-line fix. The report goes to stdout (a table, or JSON with ``--json``);
the exit code is 1 when any check failed. Package versions come from the
installed metadata and the checkpoint from its safetensors headers, so nothing
is loaded; only torch is imported, to ask about CUDA and MPS.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from m2_tools.cli.options import add_model_options, configure_logging, settings_from_args
from m2_tools.cli.tested_versions import NEWEST_TESTED
from m2_tools.settings import Settings

__all__ = ["HELP", "PACKAGES", "Check", "add_arguments", "collect_checks", "run"]

HELP = "Check the environment and model files."

Status = Literal["ok", "warn", "fail"]

_GB = 10**9
_RAM_HINT = "Check by hand that the free memory exceeds what the model needs."
#: distribution → (minimum, exclusive maximum or None, needed by, required for the core);
#: the ranges of pyproject.toml (a test keeps them equal).
PACKAGES: dict[str, tuple[str, str | None, str, bool]] = {
    "torch": ("2.6", None, "the model", True),
    "transformers": ("5.20", "6", "the model", True),
    "tokenizers": ("0.23.1", None, "the tokenizer", True),
    "safetensors": ("0.8", None, "the weights", True),
    "huggingface-hub": ("1.31", "3", "hub downloads", True),
    "pillow": ("13", None, "images", True),
    "pydantic": ("2.12", "3", "the schemas", True),
    "httpx": ("0.28.1", "1", "image URLs", True),
    "av": ("14.1", None, "video input", False),
    "mcp": ("2.2", "3", "m2-tools serve", False),
    "langchain-core": ("1.6", "2", "integrations.langchain", False),
}


@dataclass(frozen=True)
class Check:
    """One line of the report.

    Attributes:
        name: What was checked (``python``, ``torch``, ``model files`` …).
        status: ``ok``, ``warn`` or ``fail``.
        detail: What was found.
        fix: What to do about it; empty when ok.
    """

    name: str
    status: Status
    detail: str
    fix: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``doctor`` options to ``parser``."""
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    add_model_options(parser)


def run(args: argparse.Namespace) -> int:
    """Run every check, print the report; return 0 without failures, else 1."""
    checks: list[Check] = []
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        checks.append(Check("settings", "fail", _one_line(exc), "Fix the flag or M2_* variable."))
        settings = Settings.model_construct(**_safe_defaults(args))
    configure_logging(settings.log_level)
    checks.extend(collect_checks(settings))
    failed = any(c.status == "fail" for c in checks)
    if args.json:
        payload = {"ok": not failed, "checks": [asdict(c) for c in checks]}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        print(_format_table(checks))
    return 1 if failed else 0


def collect_checks(
    settings: Settings, newest_tested: Mapping[str, str] = NEWEST_TESTED
) -> list[Check]:
    """Return every check for ``settings`` (its model, device, dtype and quantization).

    Args:
        settings: The model, device, dtype and quantization to check for.
        newest_tested: Distribution → the newest version CI has tested; a newer one
            installed is a warning (default: the versions of ci/known-good.txt).
    """
    checks = [_check_python(), *_check_packages(newest_tested)]
    if settings.engine == "openai":
        # The model lives on the server: check that instead of torch and local files.
        return [*checks, _check_engine_server(settings)]
    torch_info = _probe_torch()
    checks.extend(_check_accelerators(settings, torch_info))
    checks.append(_check_memory())
    checks.extend(_check_model(settings, torch_info))
    return checks


def _check_engine_server(settings: Settings) -> Check:
    from m2_tools.engines.openai_compat import OpenAICompatibleEngine
    from m2_tools.errors import M2Error

    fix = "Start it (m2-vllm serve MODEL) or pass --engine-url with its /v1 address."
    try:
        engine = OpenAICompatibleEngine(settings)
        engine.load()
    except M2Error as exc:
        return Check("engine server", "fail", exc.message, fix)
    served, mode = engine.served_model, engine.prompt_mode
    engine.close()
    detail = f"{settings.engine_url} serves {served}"
    if mode == "plain":
        note = "not M2 on m2-vllm: answers work, but parity with the native engine is not promised"
        return Check("engine server", "warn", f"{detail}; {note}", "Serve M2 with m2-vllm.")
    return Check("engine server", "ok", f"{detail} (M2 on m2-vllm)")


# --- environment -----------------------------------------------------------------------------


def _check_python() -> Check:
    # The package needs 3.10 to import at all, so reaching this line means it is supported.
    return Check("python", "ok", f"{platform.python_version()} ({sys.executable})")


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text.split("+")[0])[:3])


def _check_packages(newest_tested: Mapping[str, str]) -> list[Check]:
    checks = []
    for dist, (minimum, below, purpose, core) in PACKAGES.items():
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            status: Status = "fail" if core else "warn"
            checks.append(
                Check(
                    dist,
                    status,
                    f"not installed (needed by {purpose})",
                    f"pip install '{dist}>={minimum}'",
                )
            )
            continue
        found = _version_tuple(version)
        too_old = found < _version_tuple(minimum)
        too_new = below is not None and found >= _version_tuple(below)
        if too_old or too_new:
            wanted = f">={minimum}" + (f",<{below}" if below else "")
            checks.append(
                Check(
                    dist,
                    "fail" if core else "warn",
                    f"{version} (needs {wanted})",
                    f"pip install '{dist}{wanted}'",
                )
            )
        else:
            checks.append(_check_tested(dist, version, newest_tested.get(dist)))
    return checks


def _check_tested(dist: str, version: str, tested: str | None) -> Check:
    # Inside the range but past what CI has run: likely fine, and the first suspect if not.
    if tested is None or _version_tuple(version) <= _version_tuple(tested):
        return Check(dist, "ok", version)
    return Check(
        dist,
        "warn",
        f"{version} is newer than {tested}, the newest version m2-tools has been tested with",
        f"If something misbehaves, try the tested one: pip install '{dist}=={tested}'",
    )


@dataclass(frozen=True)
class _TorchInfo:
    imported: bool
    cuda: list[tuple[str, int, int]]  # (name, free bytes, total bytes) per GPU
    mps: bool
    cuda_build: str | None


def _probe_torch() -> _TorchInfo:
    try:
        import torch
    except Exception:  # a broken install is reported by the package checks
        return _TorchInfo(False, [], False, None)
    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            gpus.append((torch.cuda.get_device_name(index), int(free), int(total)))
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return _TorchInfo(True, gpus, mps, torch.version.cuda)


def _check_accelerators(settings: Settings, info: _TorchInfo) -> list[Check]:
    if not info.imported:
        fix = "Reinstall torch: pip install --force-reinstall torch"
        return [Check("accelerators", "fail", "torch could not be imported", fix)]
    checks = []
    if info.cuda:
        gpus = "; ".join(
            f"cuda:{i} {name}, {free / _GB:.1f}/{total / _GB:.1f} GB free"
            for i, (name, free, total) in enumerate(info.cuda)
        )
        checks.append(Check("cuda", "ok", gpus))
    else:
        build = f"CUDA {info.cuda_build} build" if info.cuda_build else "CPU-only torch build"
        checks.append(Check("cuda", "ok", f"not available ({build})"))
    checks.append(Check("mps", "ok", "available" if info.mps else "not available"))
    checks.append(_check_device(settings.device, info))
    checks.append(_check_optional("flash-attn", "flash_attn", bool(info.cuda), "attention on CUDA"))
    quantized = settings.quantization != "none"
    bnb = _check_optional("bitsandbytes", "bitsandbytes", quantized, "8/4-bit quantization")
    if quantized and bnb.status != "ok":
        bnb = Check(bnb.name, "fail", bnb.detail, bnb.fix)
    checks.append(bnb)
    return checks


def _check_device(device: str, info: _TorchInfo) -> Check:
    chosen = _effective_device(device, info)
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if index >= len(info.cuda):
            fix = "Use --device cpu, or install a CUDA build of torch on a GPU machine."
            return Check("device", "fail", f"{device} requested but not available", fix)
    if device == "mps" and not info.mps:
        return Check("device", "fail", "mps requested but not available", "Use --device cpu.")
    if chosen == "cpu":
        return Check(
            "device",
            "warn",
            f"{device} → cpu: the 7B model is slow on CPU",
            "Use a CUDA GPU (24 GB or more) for interactive speed.",
        )
    return Check("device", "ok", f"{device} → {chosen}")


def _effective_device(device: str, info: _TorchInfo) -> str:
    if device != "auto":
        return device
    if info.cuda:
        return "cuda"
    return "mps" if info.mps else "cpu"


def _check_optional(dist: str, module: str, wanted: bool, purpose: str) -> Check:
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version is not None and importlib.util.find_spec(module) is not None:
        return Check(dist, "ok", version)
    if not wanted:
        return Check(dist, "ok", f"not installed (only used for {purpose})")
    return Check(
        dist,
        "warn",
        f"not installed (used for {purpose})",
        f"pip install 'm2-tools[cuda]' (or pip install {dist})",
    )


def _available_ram() -> tuple[int, int] | None:
    """(available, total) bytes of RAM, or None when the platform does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            fields = {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in f)}
        return fields["MemAvailable"], fields["MemTotal"]
    except (OSError, KeyError, ValueError):
        pass
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
        available = (
            os.sysconf("SC_AVPHYS_PAGES") * page if "SC_AVPHYS_PAGES" in os.sysconf_names else total
        )
        return available, total
    except (OSError, ValueError, AttributeError):
        return None


def _check_memory() -> Check:
    ram = _available_ram()
    if ram is None:
        return Check("ram", "warn", "could not read the free memory", _RAM_HINT)
    available, total = ram
    return Check("ram", "ok", f"{available / _GB:.1f} GB free of {total / _GB:.1f} GB")


# --- model files -----------------------------------------------------------------------------


def _check_model(settings: Settings, info: _TorchInfo) -> list[Check]:
    from m2_tools.engines.m2_native.checkpoint import (
        read_tensor_index,
        resolve_checkpoint,
        validate_tensors,
    )
    from m2_tools.engines.m2_native.config import load_config
    from m2_tools.errors import ModelUnavailable

    ref = settings.model
    try:
        resolved = resolve_checkpoint(ref, allow_download=False)
    except ModelUnavailable as exc:
        return [Check("model", "fail", _one_line(exc.message), _resolve_fix(ref))]
    where = f"{resolved.path} ({resolved.source}"
    where += f", revision {resolved.revision[:12]})" if resolved.revision else ")"
    checks = [Check("model", "ok", where)]
    try:
        config = load_config(resolved.path)
    except ModelUnavailable as exc:
        fix = (
            "Point --model at an M2-Reasoning checkpoint (config.json, model_type bailing_qwen2_5)."
        )
        return [*checks, Check("config", "fail", exc.message, fix)]
    text, vision = config.text, config.vision
    checks.append(
        Check(
            "config",
            "ok",
            f"LLM {text.num_hidden_layers}×{text.hidden_size}, vocab {text.vocab_size}, "
            f"vision {vision.depth}×{vision.hidden_size}, rope {config.rope_mode}",
        )
    )
    refetch = (
        "Re-create or re-download the checkpoint directory."
        if resolved.source == "local"
        else f"Re-download the checkpoint: hf download {ref}"
    )
    try:
        tensors = read_tensor_index(resolved.path)
    except ModelUnavailable as exc:
        return [*checks, Check("weights", "fail", exc.message, refetch)]
    shards = sorted({t.shard for t in tensors.values()})
    stored = sum(t.nbytes for t in tensors.values())
    dtypes = sorted({t.dtype for t in tensors.values()})
    checks.append(
        Check(
            "weights",
            "ok",
            f"{len(shards)} shard(s), {len(tensors)} tensors, {_size(stored)} ({'/'.join(dtypes)})",
        )
    )
    problems = validate_tensors(tensors, config)
    if problems:
        more = f" (and {len(problems) - 2} more)" if len(problems) > 2 else ""
        checks.append(Check("tensors", "fail", "; ".join(problems[:2]) + more, refetch))
    else:
        checks.append(Check("tensors", "ok", "every tensor matches config.json"))
    wanted = ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json")
    missing = [n for n in wanted if not (resolved.path / n).is_file()]
    if missing:
        checks.append(Check("processor", "fail", f"missing: {', '.join(missing)}", refetch))
    else:
        checks.append(Check("processor", "ok", ", ".join(wanted)))
    checks.append(_check_fit(settings, config, info))
    return checks


def _resolve_fix(ref: str) -> str:
    looks_local = ref.startswith((".", "~", os.sep)) or ref.count("/") != 1
    if looks_local or not re.fullmatch(r"[\w.-]+/[\w.-]+", ref):
        return "Pass --model with an existing checkpoint directory (or set M2_MODEL)."
    return f"Download it first: hf download {ref} (or pass --model DIR)."


def _check_fit(settings: Settings, config: Any, info: _TorchInfo) -> Check:
    from m2_tools.engines.m2_native.expected import estimate_memory_bytes, estimate_weight_bytes

    device = _effective_device(settings.device, info)
    dtype = settings.dtype
    if dtype == "auto":  # the engine's rule: half precision on accelerators only
        dtype = "float32" if device == "cpu" else "bfloat16"
    weights = estimate_weight_bytes(config, dtype, settings.quantization)
    need = estimate_memory_bytes(config, dtype, settings.quantization)
    have, what = _device_memory(device, info)
    detail = f"needs ≈{_size(need)} ({_size(weights)} weights, {dtype}) on {device}"
    if have is None:
        return Check("memory", "warn", detail + "; free memory unknown", _RAM_HINT)
    detail += f"; {_size(have)} {what}"
    smaller = "Use a device with more memory, --dtype bfloat16, or M2_QUANTIZATION=8bit/4bit."
    if weights > have:
        return Check("memory", "fail", detail, smaller)
    if need > have:
        return Check("memory", "warn", detail + " (tight for long prompts)", smaller)
    return Check("memory", "ok", detail)


def _device_memory(device: str, info: _TorchInfo) -> tuple[int | None, str]:
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if index < len(info.cuda):
            return info.cuda[index][1], "free on the GPU"
        return None, ""
    ram = _available_ram()
    return (ram[0], "free RAM") if ram else (None, "")


# --- output ----------------------------------------------------------------------------------


def _format_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = ["m2-tools doctor"]
    for c in checks:
        lines.append(f"  {c.status:<4}  {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"  {'':<4}  {'':<{width}}  fix: {c.fix}")
    fails = sum(c.status == "fail" for c in checks)
    warns = sum(c.status == "warn" for c in checks)
    lines.append(f"{fails} failed, {warns} warning(s), {len(checks) - fails - warns} ok")
    return "\n".join(lines)


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 240 else text[:239] + "…"


def _size(nbytes: float) -> str:
    if nbytes >= _GB:
        return f"{nbytes / _GB:.2f} GB"
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 1e6 else f"{nbytes / 1e3:.0f} kB"


def _safe_defaults(args: argparse.Namespace) -> dict[str, Any]:
    """Fallback settings values when the flags or environment do not validate."""
    fields: dict[str, Callable[[Any], bool]] = {
        "model": lambda v: isinstance(v, str),
        "device": lambda v: v in {"auto", "cpu", "cuda", "mps"},
    }
    values: dict[str, Any] = {
        "model": Settings.model_fields["model"].default,
        "device": "auto",
        "dtype": "auto",
        "quantization": "none",
        "auth_token": None,
        "log_level": "WARNING",
    }
    for name, ok in fields.items():
        value = getattr(args, name, None)
        if value is not None and ok(value):
            values[name] = value
    return values
