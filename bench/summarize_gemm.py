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


if __name__ == "__main__":
    main()
