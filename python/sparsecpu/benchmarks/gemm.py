"""GEMM-shape microbenchmark: our sparse kernels vs dense baselines, same run.

For each shape (M tokens, N out, K in) and thread count, times the dense peers
(fp32 and bf16: numpy's fp32 product; int8: onnxruntime MatMulInteger and
dynamic int8 MatMul, torch's dynamic int8 Linear, when installed), our dense
kernel and our sparse kernels
at each pattern and sparsity; reports medians. Our int8 timings start from
float32 activations (quantization included) and end with float32 outputs.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import SparseLinear, get_num_threads, prune_weight, set_num_threads
from ..patterns import parse_pattern, weight_layout
from . import peers
from .environment import describe_machine
from .timing import time_baseline_apart

Shape = Tuple[int, int, int]

# (N out, K in) of BERT's linear layers: attention projections, FFN up, FFN down.
BERT_BASE_NK = [(768, 768), (3072, 768), (768, 3072)]
BERT_LARGE_NK = [(1024, 1024), (4096, 1024), (1024, 4096)]
SHAPE_PRESETS: Dict[str, List[Shape]] = {
    "goal": [(128, n, k) for n, k in BERT_BASE_NK] + [(384, n, k) for n, k in BERT_LARGE_NK],
    "bert-base": [(m, n, k) for m in (128, 384) for n, k in BERT_BASE_NK],
    "bert-large": [(m, n, k) for m in (128, 384) for n, k in BERT_LARGE_NK],
    "bert-mini": [(m, n, k) for m in (128, 384) for n, k in [(256, 256), (1024, 256), (256, 1024)]],
}
SHAPE_PRESETS["bert"] = SHAPE_PRESETS["bert-base"] + SHAPE_PRESETS["bert-large"]


def parse_shapes(items: Sequence[str]) -> List[Shape]:
    shapes: List[Shape] = []
    for item in items:
        if item in SHAPE_PRESETS:
            shapes += SHAPE_PRESETS[item]
            continue
        parts = item.split(",")
        try:
            m, n, k = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"shape '{item}': expected M,N,K (e.g. 128,768,768) or one of "
                             f"{', '.join(sorted(SHAPE_PRESETS))}") from None
        if min(m, n, k) <= 0:
            raise ValueError(f"shape '{item}': M, N and K must be positive")
        shapes.append((m, n, k))
    return shapes


@dataclass
class Row:
    m: int
    n: int
    k: int
    threads: int
    dtype: str
    variant: str  # a peer's name, "sparsecpu dense", or "<pattern> @ <sparsity>"
    pattern: str
    sparsity: float
    kernel: str
    ms: float
    spread: float
    gops_dense_equivalent: float  # 2*M*N*K / t
    gops_real: float  # 2*nnz*M / t
    percent_of_peak: float  # real GOP/s over the measured single-core peak times threads
    baseline: str
    speedup_vs_baseline: float
    speedup_vs_our_dense: float


# bf16 layers against numpy's fp32 product: no peer multiplies bf16 on the CPU
# with fp32 in and out; our dense bf16 layer is in the same run.
PEERS = {"fp32": peers.fp32_peers, "int8": peers.int8_peers, "bf16": peers.fp32_peers}


def run(shapes: Sequence[Shape], patterns: Sequence[str], sparsities: Sequence[float], threads: Sequence[int],
        dtype: str = "fp32", rounds: int = 7, min_seconds: float = 0.05, seed: int = 0, peak_gops: float = 0.0,
        progress=None, fp32_peak_gops: float = 0.0) -> List[Row]:
    """peak_gops: the dtype's single-core peak for % of peak; fp32_peak_gops (bf16 runs): the
    peak of rows that ran fp32 products (numpy, and layers on fp32 kernels)."""
    if dtype not in PEERS:
        raise ValueError(f"dtype '{dtype}': expected one of {', '.join(PEERS)}")
    for p in patterns:
        if parse_pattern(p).kind == "dense":
            raise ValueError("pattern 'dense': our dense kernel is in every run already; "
                             "give sparse patterns such as 16x1, 4x1 or 2:4")
        weight_layout(parse_pattern(p))  # refuses the N:M patterns without kernels

    def sparsities_of(pattern: str) -> Sequence[float]:
        p = parse_pattern(pattern)
        return [1.0 - p.n / p.m] if p.kind == "nm" else sparsities  # N:M fixes the sparsity
    rng = np.random.default_rng(seed)
    rows: List[Row] = []
    saved_threads = get_num_threads()
    try:
        for m, n, k in shapes:
            w = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
            x = rng.standard_normal((m, k)).astype(np.float32)
            dense = SparseLinear(w, pattern="dense", dtype=dtype)
            layers = {}
            for pattern in patterns:
                for s in sparsities_of(pattern):
                    pruned = prune_weight(w, pattern, s)
                    layers[(pattern, s)] = (SparseLinear(pruned, pattern=pattern, dtype=dtype),
                                            int(np.count_nonzero(pruned)))
            for t in threads:
                set_num_threads(t)
                ours = {"sparsecpu dense": lambda: dense(x)}
                for (pattern, s), (lin, _) in layers.items():
                    ours[f"{pattern} @ {s:g}"] = (lambda lin=lin: lin(x))
                baselines = PEERS[dtype](x, w, t)
                timings = time_baseline_apart(ours, baselines, t, rounds, min_seconds)
                baseline = next(iter(baselines), "sparsecpu dense")
                base = timings[baseline].median
                base_ours = timings["sparsecpu dense"].median
                ops = 2.0 * m * n * k
                added = len(rows)

                def add(variant, pattern, sparsity, kernel, nnz):
                    tm = timings[variant]
                    real = 2.0 * nnz * m / tm.median / 1e9
                    peak = fp32_peak_gops if dtype == "bf16" and not kernel.startswith("gemm_bf16") else peak_gops
                    rows.append(Row(m, n, k, t, dtype, variant, pattern, sparsity, kernel, tm.median * 1e3,
                                    tm.spread, ops / tm.median / 1e9, real,
                                    100.0 * real / (peak * t) if peak else 0.0,
                                    baseline, base / tm.median, base_ours / tm.median))

                for name in baselines:
                    add(name, "dense", 0.0, name.split()[0], n * k)
                add("sparsecpu dense", "dense", 0.0, dense.kernel, n * k)
                for (pattern, s), (lin, nnz) in layers.items():
                    add(f"{pattern} @ {s:g}", pattern, s, lin.kernel, nnz)
                if progress:
                    progress(rows[added:])
    finally:
        set_num_threads(saved_threads)
    return rows


def geometric_means(rows: Sequence[Row]) -> List[dict]:
    """Speedups per (variant, threads), geometric mean over shapes."""
    groups: Dict[tuple, List[Row]] = {}
    for r in rows:
        groups.setdefault((r.variant, r.threads), []).append(r)
    out = []
    for (variant, t), rs in groups.items():
        mean = lambda values: math.exp(sum(math.log(v) for v in values) / len(values))  # noqa: E731
        out.append({"variant": variant, "threads": t, "shapes": len(rs), "baseline": rs[0].baseline,
                    "speedup_vs_baseline": mean([r.speedup_vs_baseline for r in rs]),
                    "speedup_vs_our_dense": mean([r.speedup_vs_our_dense for r in rs])})
    return out


def format_table(rows: Sequence[Row]) -> str:
    header = (f"{'M,N,K':>16} {'thr':>3} {'variant':<26} {'kernel':<27} {'ms':>9} {'spread':>6} "
              f"{'GOP/s eq':>9} {'real':>7} {'%peak':>5} {'vs base':>8} {'vs dense':>8}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{f'{r.m},{r.n},{r.k}':>16} {r.threads:>3} {r.variant:<26} {r.kernel:<27} {r.ms:>9.3f} "
                     f"{r.spread * 100:>5.0f}% {r.gops_dense_equivalent:>9.1f} {r.gops_real:>7.1f} "
                     f"{r.percent_of_peak:>5.0f} {r.speedup_vs_baseline:>7.2f}x {r.speedup_vs_our_dense:>7.2f}x")
    return "\n".join(lines)


def format_summary(rows: Sequence[Row]) -> str:
    means = geometric_means(rows)
    baseline = means[0]["baseline"] if means else "?"
    lines = [f"geometric mean over shapes (baseline: {baseline}):"]
    for g in means:
        if g["variant"] == g["baseline"]:
            continue
        lines.append(f"  {g['variant']:<26} threads={g['threads']}: {g['speedup_vs_baseline']:.2f}x baseline, "
                     f"{g['speedup_vs_our_dense']:.2f}x our dense ({g['shapes']} shapes)")
    return "\n".join(lines)


def format_machine(machine: dict) -> str:
    blas = machine["numpy_blas"]
    blas_text = (f"{blas.get('library')} {blas.get('version')} kernel {blas.get('kernel')}" if blas
                 else "unknown (install threadpoolctl to report it and limit its threads)")
    lines = [f"sparsecpu {machine['sparsecpu']} on {machine['cpu']}; ISA level: {machine['isa']}; "
             f"physical cores: {machine['physical_cores']}",
             f"numpy BLAS: {blas_text}"]
    for kind, peak in machine.get("peaks", {}).items():
        lines.append(f"measured {kind} peak: {peak['gops']:.0f} GOP/s per core ({peak['instruction']})")
    if machine.get("peers_without_amx"):
        lines.append("peers run without AMX: this process's requests for AMX state are refused (seccomp)")
    if machine["openblas_env"]:
        lines.append(f"warning: {machine['openblas_env']} is set and may slow numpy's BLAS; unset it for "
                     "a fair baseline")
    return "\n".join(lines)


def write_json(path: str, rows: Sequence[Row], machine: dict, command: Optional[str] = None) -> None:
    with open(path, "w") as f:
        json.dump({"command": command, "machine": machine, "rows": [asdict(r) for r in rows],
                   "geometric_means": geometric_means(rows)}, f, indent=2)


def write_csv(path: str, rows: Sequence[Row]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(Row.__dataclass_fields__))
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))


__all__ = ["run", "parse_shapes", "format_table", "format_summary", "format_machine", "describe_machine",
           "write_json", "write_csv", "SHAPE_PRESETS", "Row"]
