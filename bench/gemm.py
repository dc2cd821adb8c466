#!/usr/bin/env python3
"""GEMM-shape microbenchmark: sparse fp32 kernels vs numpy and our dense kernel, in one run.

Same options as `sparsecpu bench gemm` (run with --help). For a fair numpy
baseline, unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for this command only
and install threadpoolctl so numpy's BLAS kernel is reported and its threads
limited:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/gemm.py \\
        --shapes goal --sparsity 0.7,0.8,0.9 --pattern 16x1,4x1 --threads 1,2 \\
        --json bench/results/gemm_fp32.json
"""

import sys

from sparsecpu.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "gemm", *sys.argv[1:]]))
