#!/usr/bin/env python3
"""Two builds of sparsecpu in one process: the installed one against a git revision.

On a shared, noisy machine a change of a few percent shows only in runs of both
versions interleaved in one process (separate runs minutes apart differ by
±30% here). This builds REV from a git worktree under build/compare/ with its
own pybind11 ABI tag, so its extension loads beside the installed one, then
times both on the same inputs round by round, alternating which goes first:

    python bench/compare_builds.py HEAD~1 --gemm 128,768,768 16,768,768 --dtype int8 \\
        --pattern 4x1 --sparsity 0.9,1.0
    python bench/compare_builds.py main --model bert-base --dtype int8 --pattern 4x1 \\
        --sparsity 0.9 --seq 16,128

Each line gives both medians and the median of the per-round speed ratios
(installed over REV: above 1 means the installed build is faster) with their
interquartile range, and the largest output difference between the builds.
Sparsity 1.0 leaves one block, so the line times the per-call work outside the
dot products. Threads: SPARSECPU_NUM_THREADS (default 1 here). An A/A check:
pass the revision the installed build was made from; ratios should sit at 1.00.
Needs git, cmake, ninja and pybind11 (the development install has them); the
first build of a revision takes a few minutes, later ones reuse it.
"""

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(rev: str) -> str:
    """Builds `rev`; returns the folder to put on sys.path, holding package sparsecpu_base."""
    sha = subprocess.run(["git", "-C", ROOT, "rev-parse", "--verify", f"{rev}^{{commit}}"], check=True,
                         capture_output=True, text=True).stdout.strip()
    work = os.path.join(ROOT, "build", "compare", sha[:12])
    src, objects, pkg = os.path.join(work, "src"), os.path.join(work, "build"), os.path.join(work, "pkg")
    if not os.path.isdir(src):
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-f", src, sha], check=True,
                       capture_output=True)
    import pybind11

    abi = f'-DPYBIND11_BUILD_ABI=\\"_sparsecpu_{sha[:12]}\\"'  # its own registry of bound types
    subprocess.run(["cmake", "-S", src, "-B", objects, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                    f"-DCMAKE_CXX_FLAGS={abi}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"], check=True,
                   capture_output=True)
    print(f"building {rev} ({sha[:12]}) in {objects} ...", file=sys.stderr, flush=True)
    subprocess.run(["cmake", "--build", objects], check=True, capture_output=True)
    target = os.path.join(pkg, "sparsecpu_base")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(os.path.join(src, "python", "sparsecpu"), target)
    for name in os.listdir(objects):
        if name.startswith("_core") and name.endswith(".so"):
            shutil.copy(os.path.join(objects, name), target)
    return pkg


def timed(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def compare(label: str, ours, base, rounds: int, round_seconds: float) -> None:
    """ours/base: () -> output. Prints medians, the speed ratio and the output difference."""
    a, b = np.asarray(ours()), np.asarray(base())
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    calls = max(1, int(round_seconds / max(timed(ours, 1), 1e-7)))
    t_ours, t_base = [], []
    for r in range(rounds):
        pair = [(ours, t_ours), (base, t_base)]
        for fn, times in pair if r % 2 else pair[::-1]:
            times.append(timed(fn, calls))
    ratios = np.array(t_base) / np.array(t_ours)
    q1, q3 = np.percentile(ratios, [25, 75])
    print(f"{label}: base {np.median(t_base) * 1e3:9.3f} ms  installed {np.median(t_ours) * 1e3:9.3f} ms  "
          f"speed {np.median(ratios):.3f}x (IQR {q1:.2f}-{q3:.2f})  max|diff| {diff:.3g}", flush=True)


def weight_for(sc, rng, n: int, k: int, pattern: str, sparsity: float) -> np.ndarray:
    w = rng.standard_normal((n, k)).astype(np.float32)
    if pattern == "dense":
        return w
    if sparsity >= 1.0:  # one block left: the per-call work alone
        kept = np.zeros_like(w)
        kept[:4, :4] = w[:4, :4]
        return sc.prune_weight(kept, pattern) if pattern == "2:4" else kept
    return sc.prune_weight(w, pattern) if pattern == "2:4" else sc.prune_weight(w, pattern, sparsity)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rev", help="git revision to compare the installed build against")
    ap.add_argument("--gemm", nargs="*", default=[], metavar="M,N,K", help="SparseLinear shapes")
    ap.add_argument("--model", nargs="*", default=[], help="generated encoders (bert-base, ...) or directories")
    ap.add_argument("--dtype", default="int8", choices=["fp32", "int8", "bf16"])
    ap.add_argument("--pattern", default="4x1")
    ap.add_argument("--sparsity", default="0.9", help="comma-separated (ignored by dense and 2:4)")
    ap.add_argument("--seq", default="128", help="model sequence lengths, comma-separated")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--round-seconds", type=float, default=0.01)
    args = ap.parse_args(argv)
    if not args.gemm and not args.model:
        ap.error("nothing to time: give --gemm shapes and/or --model names")
    os.environ.setdefault("SPARSECPU_NUM_THREADS", "1")

    sys.path.insert(0, build(args.rev))
    base = importlib.import_module("sparsecpu_base")
    import sparsecpu as ours

    print(f"installed: {ours.__file__}\nbase:      {base.__file__}\nisa {ours.cpu_info()['isa']}, "
          f"threads {ours.get_num_threads()}", flush=True)
    sparsities = [float(s) for s in args.sparsity.split(",")]
    if args.pattern in ("dense", "2:4"):
        sparsities = sparsities[:1]
    rng = np.random.default_rng(0)
    for shape in args.gemm:
        m, n, k = (int(v) for v in shape.split(","))
        x = rng.standard_normal((m, k)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        for sparsity in sparsities:
            w = weight_for(ours, rng, n, k, args.pattern, sparsity)
            mine = ours.SparseLinear(w, bias, pattern=args.pattern, dtype=args.dtype)
            theirs = base.SparseLinear(w, bias, pattern=args.pattern, dtype=args.dtype)
            label = f"{m},{n},{k} {args.dtype} {args.pattern}" + (
                "" if args.pattern in ("dense", "2:4") else f" {sparsity:g}") + f" [{mine.kernel}]"
            compare(label, lambda: mine(x), lambda: theirs(x), args.rounds, args.round_seconds)
    if args.model:
        from sparsecpu.benchmarks import model as bm
        folder = os.path.join(ROOT, "build", "compare", "models")
        for name in args.model:
            path = bm.generate_bert(os.path.join(folder, name), *bm.SHAPES[name]) if name in bm.SHAPES else name
            for sparsity in sparsities:
                kwargs = dict(dtype=args.dtype, pattern=args.pattern,
                              sparsity=None if args.pattern in ("dense", "2:4") else sparsity)
                mine, theirs = ours.compile(path, **kwargs), base.compile(path, **kwargs)
                for seq in (int(s) for s in args.seq.split(",")):
                    ids = rng.integers(1000, 20000, size=(args.batch, seq)).astype(np.int64)
                    first = lambda out: next(iter(out.values())) if isinstance(out, dict) else out  # noqa: E731
                    label = f"{os.path.basename(name.rstrip('/'))} {args.dtype} {args.pattern} " + (
                        "" if args.pattern in ("dense", "2:4") else f"{sparsity:g} ") + f"b{args.batch} s{seq}"
                    compare(label, lambda: first(mine(input_ids=ids)), lambda: first(theirs(input_ids=ids)),
                            max(5, args.rounds // 2), max(args.round_seconds, 0.05))
    return 0


if __name__ == "__main__":
    sys.exit(main())
