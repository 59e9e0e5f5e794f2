"""Prefill and decode speed of the native engine at the real M2-Reasoning-7B shapes.

The model is built with random weights straight on the GPU (bfloat16, about
16.6 GB): no download and no checkpoint on disk. Each row is a tool-call-shaped
prompt: about 64 system tokens, one 800×600 image (609 image tokens after the
smart resize) and a question of about 100 tokens. Decoding is greedy with no
stop token, so every row generates exactly ``--new-tokens`` tokens.

Prefill time runs from the call until the first token (vision tower, projector
and the prompt pass); decode time from there to the last token.

Usage::

    python benchmarks/bench_gpu_7b.py                 # CUDA, batch 1 and 8
    python benchmarks/bench_gpu_7b.py --tiny          # tiny shapes on CPU (smoke test)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

import torch


@dataclass
class Measurement:
    batch: int
    prompt_tokens: int
    new_tokens: int
    prefill_s: float
    decode_s: float
    prefill_tok_s: float
    decode_tok_s: float
    peak_gib: float | None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="Tiny shapes on the CPU.")
    parser.add_argument("--device", default=None, help="Default: cuda, or cpu with --tiny.")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default=None)
    parser.add_argument("--batch-sizes", default="1,8", help="Comma-separated batch sizes.")
    parser.add_argument("--new-tokens", type=int, default=64, help="Tokens generated per row.")
    parser.add_argument("--image", default="800x600", help="WIDTHxHEIGHT, or 'none'.")
    parser.add_argument("--question-tokens", type=int, default=100)
    parser.add_argument("--attn", default="auto", choices=["auto", "sdpa", "flash_attention_2"])
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _attention(setting: str, device: torch.device, dtype: torch.dtype) -> str:
    from m2_tools.engines.m2_native.loading import resolve_attention

    return resolve_attention(setting, device, dtype)


def _measure(
    model: object, batch: int, args: argparse.Namespace, device: torch.device
) -> Measurement:
    from m2_tools.engines.m2_native.generation import DecodeOptions, generate_batch
    from m2_tools.engines.m2_native.tiny import synthetic_prompt

    image = None if args.image == "none" else tuple(int(v) for v in args.image.split("x"))
    prompts = [
        synthetic_prompt(
            model.config,  # type: ignore[attr-defined]
            image_size=image,  # type: ignore[arg-type]
            question_tokens=args.question_tokens + row,  # unequal lengths exercise padding
            seed=args.seed + row,
        )
        for row in range(batch)
    ]
    first_token_at: list[float] = []

    def on_token(count: int) -> None:
        if count == 1 and not first_token_at:
            first_token_at.append(time.perf_counter())

    options = [DecodeOptions(max_new_tokens=args.new_tokens, on_token=on_token) for _ in prompts]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    outputs = generate_batch(model, prompts, options, stop_ids=(), pad_id=0)  # type: ignore[arg-type]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    ended = time.perf_counter()
    assert all(len(o.token_ids) == args.new_tokens for o in outputs)
    prompt_tokens = sum(len(p.input_ids) for p in prompts)
    prefill = first_token_at[0] - started
    decode = ended - first_token_at[0]
    decoded = batch * (args.new_tokens - 1)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return Measurement(
        batch=batch,
        prompt_tokens=prompt_tokens,
        new_tokens=batch * args.new_tokens,
        prefill_s=round(prefill, 4),
        decode_s=round(decode, 4),
        prefill_tok_s=round(prompt_tokens / prefill, 1),
        decode_tok_s=round(decoded / decode, 1) if decode > 0 else float("nan"),
        peak_gib=round(peak, 2) if peak is not None else None,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "bench_gpu_7b: CUDA is not available here; the 7B shapes need a GPU with about "
            "24 GB or more. Use --tiny to run the same code path on the CPU.",
            file=sys.stderr,
        )
        return 2
    dtype = getattr(torch, args.dtype or ("float32" if device.type == "cpu" else "bfloat16"))
    from m2_tools.engines.m2_native.tiny import build_random_model

    preset = "tiny" if args.tiny else "7b-shapes"
    attention = _attention(args.attn, device, dtype)
    started = time.perf_counter()
    model = build_random_model(
        preset, device=device, dtype=dtype, seed=args.seed, attn_implementation=attention
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    build_s = time.perf_counter() - started
    params = sum(p.numel() for p in model.parameters())
    weights_gib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
    batches = [int(b) for b in args.batch_sizes.split(",")]
    # Warm-up: kernels, cuBLAS handles and the allocator, at the largest batch.
    warm = argparse.Namespace(**{**vars(args), "new_tokens": 2})
    _measure(model, max(batches), warm, device)
    results = [_measure(model, batch, args, device) for batch in batches]

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    dtype_name = str(dtype).removeprefix("torch.")
    print(
        f"M2 {preset}: {params / 1e6:,.1f}M params, {weights_gib:.2f} GiB {dtype_name} on {name}, "
        f"attention {attention}, built in {build_s:.1f} s, image {args.image}"
    )
    header = (
        f"{'batch':>5} {'prompt tok':>10} {'prefill s':>9} {'prefill tok/s':>13} "
        f"{'decode s':>8} {'decode tok/s':>12} {'peak GiB':>8}"
    )
    print(header)
    for r in results:
        peak = f"{r.peak_gib:8.2f}" if r.peak_gib is not None else f"{'n/a':>8}"
        print(
            f"{r.batch:>5} {r.prompt_tokens:>10} {r.prefill_s:>9.3f} {r.prefill_tok_s:>13.1f} "
            f"{r.decode_s:>8.3f} {r.decode_tok_s:>12.1f} {peak}"
        )
    summary = {
        "bench": "gpu_7b",
        "preset": preset,
        "device": name,
        "dtype": dtype_name,
        "attention": attention,
        "params": params,
        "weights_gib": round(weights_gib, 2),
        "image": args.image,
        "new_tokens_per_row": args.new_tokens,
        "results": [asdict(r) for r in results],
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
