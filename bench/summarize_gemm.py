#!/usr/bin/env python3
"""Geometric means of a `bench gemm --json` result, over all its shapes or a preset's.

    python bench/summarize_gemm.py bench/results/gemm_fp32_bert.json --shapes goal
"""

import argparse
import json

from sparsecpu.benchmarks import gemm


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("result")
    parser.add_argument("--shapes", nargs="+", help="keep only these shapes (presets or M,N,K)")
    parser.add_argument("--markdown", type=int, metavar="THREADS",
                        help="also print a per-shape Markdown table for this thread count")
    args = parser.parse_args()
    with open(args.result) as f:
        data = json.load(f)
    rows = [gemm.Row(**r) for r in data["rows"]]
    if args.shapes:
        keep = set(gemm.parse_shapes(args.shapes))
        rows = [r for r in rows if (r.m, r.n, r.k) in keep]
    print(f"{args.result}: {data['command']}")
    print(gemm.format_machine(data["machine"]))
    print(gemm.format_summary(rows))
    if args.markdown:
        print()
        print(markdown_table([r for r in rows if r.threads == args.markdown]))


def markdown_table(rows):
    """One line per shape: each dense variant's GOP/s, then each sparse variant's
    dense-equivalent GOP/s and speedup over the run's baseline."""
    dense = [v for v in dict.fromkeys(r.variant for r in rows if r.pattern == "dense")]
    sparse = [v for v in dict.fromkeys(r.variant for r in rows if r.pattern != "dense")]
    head = ["M,N,K"] + [f"{v} GOP/s" for v in dense] + [f"{v}: eq GOP/s (vs baseline)" for v in sparse]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for shape in dict.fromkeys((r.m, r.n, r.k) for r in rows):
        by = {r.variant: r for r in rows if (r.m, r.n, r.k) == shape}
        cells = [",".join(map(str, shape))] + [f"{by[v].gops_dense_equivalent:.0f}" for v in dense]
        cells += [f"{by[v].gops_dense_equivalent:.0f} ({by[v].speedup_vs_baseline:.2f}x)" for v in sparse]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
