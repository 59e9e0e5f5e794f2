"""Find an M2 checkpoint, read its safetensors headers and check them against the config.

Nothing here imports torch or allocates a tensor: the headers are parsed by hand
(8-byte length, then JSON), so ``m2-tools doctor`` can inspect a 16.7 GB
checkpoint in milliseconds and the loader can refuse a broken one before it
spends memory on it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from m2_tools.engines.m2_native.config import M2Config, load_config
from m2_tools.engines.m2_native.expected import expected_tensor_shapes
from m2_tools.errors import M2Error, ModelUnavailable

__all__ = [
    "CheckpointReport",
    "ResolvedCheckpoint",
    "TensorInfo",
    "inspect_checkpoint",
    "read_tensor_index",
    "resolve_checkpoint",
    "validate_tensors",
]

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.txt", "tokenizer*"]
_HEADER_LIMIT = 100 * 1024 * 1024  # safetensors' own cap on the JSON header


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A model reference turned into a local directory.

    Attributes:
        path: The directory holding ``config.json`` and the weights.
        revision: The hub snapshot hash when it came from the hub cache, else None.
        source: ``local``, ``hub-cache`` or ``hub-download``.
    """

    path: Path
    revision: str | None
    source: str


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as its safetensors header describes it."""

    name: str
    shard: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    @property
    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class CheckpointReport:
    """What :func:`inspect_checkpoint` found; ``problems`` is empty for a loadable checkpoint.

    Attributes:
        reference: The model reference as given.
        path: The resolved directory, or None when it could not be resolved.
        revision: The hub snapshot hash, if any.
        config: The parsed config, or None when it could not be parsed.
        shards: Weight files, in load order.
        tensor_count: Tensors found in the headers.
        parameter_count: Elements over all tensors.
        total_bytes: Bytes of tensor data over all shards.
        dtypes: Tensor count per safetensors dtype (``BF16``, ``F32`` …).
        problems: Human-readable reasons the checkpoint cannot be loaded.
    """

    reference: str
    path: Path | None = None
    revision: str | None = None
    config: M2Config | None = None
    shards: list[str] = field(default_factory=list)
    tensor_count: int = 0
    parameter_count: int = 0
    total_bytes: int = 0
    dtypes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    @property
    def dtype(self) -> str | None:
        """The dominant stored dtype (most tensors), if any tensor was read."""
        return max(self.dtypes, key=lambda k: self.dtypes[k]) if self.dtypes else None


def resolve_checkpoint(
    reference: str,
    *,
    allow_download: bool = True,
    token: str | None = None,
    cache_dir: str | Path | None = None,
) -> ResolvedCheckpoint:
    """Turn a local directory or a hub id into a local checkpoint directory.

    A hub id is looked up in the local hub cache first; it is downloaded (with a
    progress bar on stderr) only when that misses, downloads are allowed and
    ``HF_HUB_OFFLINE`` is unset. Failures are prompt: the hub client's metadata
    time-out is kept short.

    Args:
        reference: A directory path or an ``owner/name`` hub id.
        allow_download: Whether a cache miss may go to the network.
        token: Hub token for gated or private repositories.
        cache_dir: The hub cache to use instead of the default one.

    Raises:
        ModelUnavailable: Neither a directory nor a reachable hub id.
    """
    local = Path(reference).expanduser()
    if local.is_dir():
        return ResolvedCheckpoint(local.resolve(), None, "local")
    if local.exists():
        raise ModelUnavailable(f"model path {reference} is not a directory")
    if not _HUB_ID.match(reference):
        raise ModelUnavailable(f"model directory {reference} does not exist")

    from huggingface_hub import snapshot_download

    try:
        cached = snapshot_download(
            reference, local_files_only=True, token=token, cache_dir=cache_dir
        )
        return _from_snapshot(Path(cached), "hub-cache")
    except Exception as exc:  # any cache miss falls through to the download attempt
        cache_error: Exception = exc
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    if not allow_download or offline:
        why = "HF_HUB_OFFLINE is set" if offline else "downloads are disabled"
        raise ModelUnavailable(
            f"{reference} not found locally and could not be downloaded: {why} "
            f"({_short(cache_error)})"
        )
    logger.info("downloading %s from the hub", reference)
    try:
        fetched = snapshot_download(
            reference,
            allow_patterns=_DOWNLOAD_PATTERNS,
            etag_timeout=5,
            token=token,
            cache_dir=cache_dir,
        )
    except Exception as exc:
        raise ModelUnavailable(
            f"{reference} not found locally and could not be downloaded: {_short(exc)}"
        ) from None
    return _from_snapshot(Path(fetched), "hub-download")


def read_tensor_index(checkpoint_dir: Path) -> dict[str, TensorInfo]:
    """Read the header of every weight shard, without loading tensor data.

    Uses ``model.safetensors.index.json`` when present, else ``model.safetensors``.

    Raises:
        ModelUnavailable: The index or a shard is missing, unreadable or truncated,
            or the index maps a tensor to a shard that does not hold it.
    """
    index_path = checkpoint_dir / "model.safetensors.index.json"
    if index_path.is_file():
        try:
            weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelUnavailable(f"{index_path} is not a valid index: {exc}") from None
        shards = sorted(set(weight_map.values()))
    elif (checkpoint_dir / "model.safetensors").is_file():
        weight_map, shards = None, ["model.safetensors"]
    else:
        raise ModelUnavailable(
            f"{checkpoint_dir} holds no model.safetensors.index.json or model.safetensors"
        )
    tensors: dict[str, TensorInfo] = {}
    for shard in shards:
        for info in _read_header(checkpoint_dir / shard):
            if info.name in tensors:
                raise ModelUnavailable(f"tensor {info.name} appears in two shards")
            tensors[info.name] = info
    if weight_map is not None:
        for name, shard in weight_map.items():
            if name in tensors and tensors[name].shard != shard:
                raise ModelUnavailable(f"tensor {name} is not in {shard}, where the index puts it")
    return tensors


def validate_tensors(tensors: Mapping[str, TensorInfo], config: M2Config) -> list[str]:
    """Compare the tensors found with those the config implies; return the problems.

    Every missing, unexpected or mis-shaped tensor is named in the result.
    """
    expected = expected_tensor_shapes(config)
    problems = []
    for name, shape in expected.items():
        info = tensors.get(name)
        if info is None:
            problems.append(f"tensor {name} is missing")
        elif info.shape != shape:
            problems.append(f"tensor {name} has shape {list(info.shape)}, expected {list(shape)}")
        elif info.dtype not in ("F32", "F16", "BF16"):
            problems.append(f"tensor {name} has dtype {info.dtype}, expected a float type")
    problems.extend(f"tensor {name} is unexpected" for name in sorted(set(tensors) - set(expected)))
    return problems


def inspect_checkpoint(
    reference: str,
    *,
    allow_download: bool = False,
    token: str | None = None,
    cache_dir: str | Path | None = None,
) -> CheckpointReport:
    """Check a checkpoint without loading it: resolution, config, every header and shape.

    Never raises for a broken checkpoint: the reasons go into ``problems``.

    Args:
        reference: A directory path or a hub id.
        allow_download: Whether a hub id missing from the cache may be downloaded.
        token: Hub token for gated or private repositories.
        cache_dir: The hub cache to use instead of the default one.
    """
    report = CheckpointReport(reference=reference)
    try:
        resolved = resolve_checkpoint(
            reference, allow_download=allow_download, token=token, cache_dir=cache_dir
        )
        report.path, report.revision = resolved.path, resolved.revision
        report.config = load_config(resolved.path)
        tensors = read_tensor_index(resolved.path)
    except M2Error as exc:
        report.problems.append(exc.message)
        return report
    report.shards = sorted({t.shard for t in tensors.values()})
    report.tensor_count = len(tensors)
    report.parameter_count = sum(t.numel for t in tensors.values())
    report.total_bytes = sum(t.nbytes for t in tensors.values())
    for t in tensors.values():
        report.dtypes[t.dtype] = report.dtypes.get(t.dtype, 0) + 1
    report.problems.extend(validate_tensors(tensors, report.config))
    for name in ("tokenizer.json", "preprocessor_config.json"):
        if not (resolved.path / name).is_file():
            report.problems.append(f"{name} is missing")
    return report


def _read_header(path: Path) -> list[TensorInfo]:
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > min(_HEADER_LIMIT, size - 8):
                raise ValueError("header length is out of range")
            header = json.loads(f.read(length))
    except FileNotFoundError:
        raise ModelUnavailable(f"weight shard {path.name} is missing") from None
    except (OSError, ValueError, struct.error) as exc:
        raise ModelUnavailable(f"weight shard {path.name} is unreadable: {exc}") from None
    data_size = size - 8 - length
    infos = []
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        if end > data_size:
            raise ModelUnavailable(f"weight shard {path.name} is truncated (tensor {name})")
        infos.append(TensorInfo(name, path.name, meta["dtype"], tuple(meta["shape"]), end - start))
    return infos


def _from_snapshot(path: Path, source: str) -> ResolvedCheckpoint:
    # Hub cache layout: .../snapshots/<commit hash>/
    revision = path.name if path.parent.name == "snapshots" else None
    return ResolvedCheckpoint(path, revision, source)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
