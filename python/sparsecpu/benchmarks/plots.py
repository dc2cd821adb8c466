"""Plots for `sparsecpu bench ... --plot` (matplotlib: pip install 'sparsecpu[bench]')."""

from __future__ import annotations

from collections import defaultdict
from typing import List


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot needs matplotlib (pip install matplotlib)") from None
    return plt


def gemm_speedups(rows, path: str) -> None:
    """Speedup over the same-run baseline vs sparsity, one line per (shape, pattern, threads)."""
    plt = _pyplot()
    lines = defaultdict(list)
    for r in rows:
        if r.pattern not in ("", "dense") and r.sparsity > 0:
            lines[(r.m, r.n, r.k, r.pattern, r.threads)].append((r.sparsity, r.speedup_vs_baseline))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (m, n, k, pattern, threads), points in sorted(lines.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                label=f"{m},{n},{k} {pattern} t{threads}")
    baseline = rows[0].baseline if rows else "baseline"
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_xlabel("sparsity")
    ax.set_ylabel(f"speedup over {baseline} (same run)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def model_latency_vs_seq(rows: List[dict], path: str) -> None:
    """p50 latency vs sequence length, one line per (model, variant, batch, threads)."""
    plt = _pyplot()
    lines = defaultdict(list)
    for r in rows:
        lines[(r["model"], r["variant"], r["batch"], r["threads"])].append((r["seq"], r["p50_ms"]))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (model, variant, batch, threads), points in sorted(lines.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                label=f"{model} {variant} b{batch} t{threads}")
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("p50 latency (ms)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
