#!/usr/bin/env python3
"""Whole-encoder latency and throughput: `sparsecpu bench model` with the README table's settings.

    python bench/model.py --models bert-base,minilm --batch 1,8 --threads 1 --json bench/results/model_1thread.json
"""

import sys

from sparsecpu.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--models" in args:  # the older spelling of this script
        i = args.index("--models")
        args = [a for j, a in enumerate(args) if j not in (i, i + 1)] + [args[i + 1]]
    sys.exit(main(["bench", "model", "--dtype", "fp32,int8", "--pattern", "4x1", "--sparsity", "0.8,0.9"] + args))
