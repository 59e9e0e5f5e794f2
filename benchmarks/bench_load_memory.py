"""Peak RAM of loading a checkpoint with the native engine, per byte of checkpoint.

Writes a random-weight checkpoint of the requested size (M2 layout, sharded like
the release: about four shards) in a temporary directory, then loads it with
``M2NativeEngine(Settings(model=dir, device="cpu", dtype=<stored dtype>)).load()``
in a fresh Python process. That process reports ``ru_maxrss`` after its imports
(the baseline), after ``load()``, and after reading every weight once (the
peak: memory-mapped weights only become resident when read). The figure is
``(peak - baseline) / checkpoint bytes``; the target is at most 1.25, i.e. the
loader never holds much more than the weights themselves.

Usage::

    python benchmarks/bench_load_memory.py                   # 1.2 GB float32
    python benchmarks/bench_load_memory.py --dtype bfloat16 --size-gb 2
    python benchmarks/bench_load_memory.py --checkpoint DIR  # measure an existing one
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.25
#: Widths of the generated model; the layer count is chosen to reach the size asked for.
_SIZES: dict[str, Any] = {
    "hidden_size": 1024,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "intermediate_size": 4096,
    "vocab_size": 32768,
    "vision_hidden_size": 512,
    "vision_num_heads": 8,
    "vision_depth": 8,
    "vision_intermediate_size": 1536,
    "out_hidden_size": 1024,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.2, help="Checkpoint size (10**9 B).")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--shard-size-mb", type=float, default=None, help="Default: size / 4.")
    parser.add_argument("--checkpoint", type=Path, default=None, help="Measure this directory.")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--load-dtype",
        choices=["auto", "float32", "bfloat16"],
        default=None,
        help="Dtype the engine loads in (default: the stored one; auto is float32 on CPU).",
    )
    return parser.parse_args(argv)


def _layers_for(size_bytes: float, itemsize: int) -> int:
    from m2_tools.engines.m2_native.tiny import build_spec, weight_shapes

    def total(layers: int) -> int:
        spec = build_spec("small", num_hidden_layers=layers, **_SIZES)
        return sum(math.prod(s) for _, s in weight_shapes(spec, _SIZES["vocab_size"])) * itemsize

    per_layer = total(2) - total(1)
    return max(1, math.ceil((size_bytes - total(0 + 1) + per_layer) / per_layer))


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def _child(checkpoint: Path, dtype: str) -> dict[str, Any]:
    """Runs in the fresh process: import, take the baseline, load, take the peak."""
    from m2_tools.engines.m2_native.engine import M2NativeEngine
    from m2_tools.settings import Settings

    settings = Settings(model=str(checkpoint), device="cpu", dtype=dtype)
    engine = M2NativeEngine(settings)
    baseline = _maxrss_bytes()
    started = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - started
    after_load = _maxrss_bytes()
    # The loader may leave tensors backed by the shard files' memory maps, which only
    # become resident when read; read every weight so the figure covers serving too.
    import torch

    with torch.no_grad():
        for param in engine.model.parameters():
            torch.sum(param)
    peak = _maxrss_bytes()
    weights = sum(p.numel() * p.element_size() for p in engine.model.parameters())
    return {
        "baseline": baseline,
        "after_load": after_load,
        "peak": peak,
        "load_s": load_s,
        "weights": weights,
    }


def _checkpoint_bytes(checkpoint: Path) -> tuple[int, int]:
    index = json.loads((checkpoint / "model.safetensors.index.json").read_text(encoding="utf-8"))
    return int(index["metadata"]["total_size"]), len(set(index["weight_map"].values()))


def _measure(checkpoint: Path, dtype: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(checkpoint), "--load-dtype", dtype],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the loading process failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _report(checkpoint: Path, stored: str, load_dtype: str, generate_s: float | None) -> int:
    size, shards = _checkpoint_bytes(checkpoint)
    child = _measure(checkpoint, load_dtype)
    grown = child["peak"] - child["baseline"]
    ratio = grown / size
    rows = [
        ("checkpoint", f"{size / 1e9:.3f} GB in {shards} shard(s), {stored}"),
        ("loaded as", load_dtype),
        ("generated in", f"{generate_s:.1f} s" if generate_s is not None else "(given)"),
        ("weights loaded", f"{child['weights'] / 1e9:.3f} GB"),
        ("baseline RSS", f"{child['baseline'] / 1e9:.3f} GB (after imports)"),
        ("RSS after load", f"{child['after_load'] / 1e9:.3f} GB (before any weight is read)"),
        ("peak RSS", f"{child['peak'] / 1e9:.3f} GB (after reading every weight)"),
        ("load time", f"{child['load_s']:.1f} s"),
        ("peak - baseline", f"{grown / 1e9:.3f} GB"),
        ("ratio", f"{ratio:.3f} (target <= {TARGET_RATIO})"),
        ("per loaded byte", f"{grown / child['weights']:.3f} (when the load dtype is wider)"),
    ]
    for name, value in rows:
        print(f"{name:<16} {value}")
    ok = ratio <= TARGET_RATIO
    summary = {
        "bench": "load_memory",
        "checkpoint_bytes": size,
        "shards": shards,
        "dtype": stored,
        "load_dtype": load_dtype,
        "baseline_rss": child["baseline"],
        "after_load_rss": child["after_load"],
        "peak_rss": child["peak"],
        "weights_bytes": child["weights"],
        "load_s": round(child["load_s"], 2),
        "ratio": round(ratio, 4),
        "ratio_to_loaded_weights": round(grown / child["weights"], 4),
        "target": TARGET_RATIO,
        "ok": ok,
    }
    print(json.dumps(summary))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(args.child, args.load_dtype)))
        return 0
    if args.checkpoint is not None:
        config = json.loads((args.checkpoint / "config.json").read_text(encoding="utf-8"))
        stored = str(config.get("torch_dtype") or "float32")
        return _report(args.checkpoint, stored, args.load_dtype or stored, None)

    from m2_tools.engines.m2_native.tiny import make_tiny_model

    itemsize = 4 if args.dtype == "float32" else 2
    size = args.size_gb * 1e9
    layers = _layers_for(size, itemsize)
    shard_mb = args.shard_size_mb or math.ceil(size / 4 / 1e6)
    with tempfile.TemporaryDirectory(prefix="m2-bench-") as tmp:
        started = time.perf_counter()
        checkpoint = make_tiny_model(
            Path(tmp) / "ckpt",
            preset="small",
            dtype=args.dtype,
            num_hidden_layers=layers,
            shard_size_mb=shard_mb,
            **_SIZES,
        )
        elapsed = time.perf_counter() - started
        return _report(checkpoint, args.dtype, args.load_dtype or args.dtype, elapsed)


if __name__ == "__main__":
    sys.exit(main())
