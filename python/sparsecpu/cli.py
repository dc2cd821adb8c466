"""The `sparsecpu` command: info, demo, prune, bench."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A problem with what the user asked for; `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: usage: {message}\n")


def _csv(kind):
    def parse(text):
        try:
            return [kind(item) for item in text.split(",") if item.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of {kind.__name__}") from None
    return parse


# ---- info -------------------------------------------------------------------

INFO_PATTERNS = ["16x1", "8x1", "4x1", "1x4", "1x1", "2:4", "dense"]


def cmd_info(args) -> int:
    import numpy as np

    import sparsecpu as sc

    info = sc.cpu_info()
    eye = np.eye(16, dtype=np.float32)
    kernels = {p: sc.SparseLinear(eye, pattern=p).kernel for p in INFO_PATTERNS}
    int8_kernels = {p: sc.SparseLinear(eye, pattern=p, dtype="int8").kernel for p in INFO_PATTERNS}
    bf16_kernels = {p: sc.SparseLinear(eye, pattern=p, dtype="bf16").kernel for p in INFO_PATTERNS}
    from sparsecpu import _core

    def best(kernels):
        return next(name for name, _, usable in kernels if usable)

    encoder_ops = {"attention": _core.attention_kernel_for("fp32"),
                   "attention_int8_bf16_models": _core.attention_kernel_for("bf16"),
                   "layernorm": best(_core.layernorm_kernels())}
    info = dict(info, version=sc.__version__, fp32_kernels=kernels, int8_kernels=int8_kernels,
                bf16_kernels=bf16_kernels, encoder_op_kernels=encoder_ops, bf16_products=_core.bf16_products())
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print(f"sparsecpu {info['version']}")
    print(f"cpu:            {info['model'] or '?'} ({info['vendor']})")
    print(f"isa in use:     {info['isa']}")
    print(f"isa available:  {', '.join(info['isa_available'])}")
    print(f"flags:          {' '.join(info['flags'])}")
    print(f"physical cores: {info['physical_cores']}")
    print(f"threads:        {info['num_threads']}")
    print("kernels:           fp32                         int8                         bf16")
    for pattern in INFO_PATTERNS:
        print(f"  {pattern:<6} {kernels[pattern]:<28} {int8_kernels[pattern]:<28} {bf16_kernels[pattern]}")
    print(f"encoder ops:    {encoder_ops['attention']} (int8 and bf16 models: "
          f"{encoder_ops['attention_int8_bf16_models']}), {encoder_ops['layernorm']}")
    products = info["bf16_products"]
    rates = (f"; vdpbf16ps {products['bf16_gflops']:.0f}, vfmadd231ps {products['fp32_gflops']:.0f} GFLOP/s"
             if products["bf16_gflops"] else "")
    print(f"bf16 products:  {'used' if products['use'] else 'not used'} ({products['reason']}{rates})")
    return EXIT_OK


# ---- demo -------------------------------------------------------------------

def cmd_demo(args) -> int:
    import sparsecpu as sc
    from sparsecpu.demo import run_demo

    if args.threads is not None and args.threads < 0:
        raise CommandError(f"--threads {args.threads}: must be >= 0")
    if not 1 <= args.tokens <= 512:
        raise CommandError(f"--tokens {args.tokens}: must be between 1 and 512")
    threads = args.threads or sc.get_num_threads()
    if args.rounds < 1:
        raise CommandError(f"--rounds {args.rounds}: must be >= 1")
    if not run_demo(threads, tokens=args.tokens, rounds=args.rounds, generated=args.generated):
        raise CommandError("demo: onnxruntime on our exported file disagrees with our dense fp32 model", EXIT_INPUT)
    return EXIT_OK


# ---- prune ------------------------------------------------------------------

def cmd_prune(args) -> int:
    import os

    from sparsecpu.pruning import PruneError, prune
    from sparsecpu.pruning.onnx_pruner import save_model

    source, target = args.input, args.output
    if os.path.exists(target):
        if os.path.exists(source) and os.path.samefile(source, target):
            raise CommandError(f"-o: {target}: is the input file; the input is never modified")
        if not args.force:
            raise CommandError(f"-o: {target}: already exists (use --force to replace it)")
    calibration = args.calibration
    if calibration is not None and not calibration.endswith(".npz"):
        try:
            calibration = int(calibration)
        except ValueError:
            raise CommandError(f"--calibration: '{calibration}': expected a number of samples or an .npz file") \
                from None
    try:
        model, report = prune(source, args.pattern, args.sparsity, method=args.method, calibration=calibration,
                              include=args.include, exclude=args.exclude, global_sparsity=args.global_sparsity,
                              progress=not args.quiet)
    except FileNotFoundError as exc:
        raise CommandError(str(exc), EXIT_INPUT) from None
    except PruneError as exc:
        raise CommandError(str(exc), EXIT_USAGE if exc.usage else EXIT_INPUT) from None
    except ValueError as exc:  # a pattern the parser refused
        raise CommandError(f"--pattern: {exc}") from None
    try:
        import onnx

        onnx.checker.check_model(model, full_check=False)
        save_model(model, target)
    except OSError as exc:
        raise CommandError(f"{target}: {exc.strerror or exc}", EXIT_INPUT) from None
    if not args.quiet:
        print(report)
        if report.fidelity is None:
            print("fidelity: not measured (install onnxruntime to compare the outputs)")
        print(f"wrote {target}")
    return EXIT_OK


# ---- bench ------------------------------------------------------------------

def cmd_bench_gemm(args) -> int:
    from sparsecpu import _core
    from sparsecpu.benchmarks import gemm, peers

    if args.dtype not in ("fp32", "int8", "bf16"):
        raise CommandError(f"--dtype {args.dtype}: expected fp32, int8 or bf16")
    if args.peers_without_amx and not peers.deny_amx():
        raise CommandError("--peers-without-amx: this system did not accept the seccomp filter", EXIT_INPUT)
    try:
        shapes = gemm.parse_shapes(args.shapes)
    except ValueError as exc:
        raise CommandError(f"--shapes: {exc}") from None
    for s in args.sparsity:
        if not 0.0 <= s < 1.0:
            raise CommandError(f"--sparsity {s:g}: must be in [0, 1)")
    if any(t <= 0 for t in args.threads):
        raise CommandError("--threads: each count must be >= 1")
    rounds, min_seconds = (3, 0.01) if args.quick else (args.repeats, 0.05)
    machine = gemm.describe_machine()
    kinds = [args.dtype, "fp32"] if args.dtype == "bf16" else [args.dtype]  # bf16: some rows run fp32 products
    machine["peaks"] = {kind: _core.measure_peak(kind, 0.05 if args.quick else 0.3) for kind in kinds}
    machine["peers_without_amx"] = bool(args.peers_without_amx)
    print(gemm.format_machine(machine))
    print(f"{len(shapes)} shape(s) x patterns {','.join(args.pattern)} x sparsities "
          f"{','.join(f'{s:g}' for s in args.sparsity)} x threads {','.join(map(str, args.threads))}; "
          f"median of {rounds} rounds\n", flush=True)
    printed_header = []

    def progress(rows):
        table = gemm.format_table(rows).split("\n")
        if not printed_header:
            print("\n".join(table[:2]))
            printed_header.append(True)
        print("\n".join(table[2:]), flush=True)

    try:
        rows = gemm.run(shapes, args.pattern, args.sparsity, args.threads, dtype=args.dtype, rounds=rounds,
                        min_seconds=min_seconds, peak_gops=machine["peaks"][args.dtype]["gops"], progress=progress,
                        fp32_peak_gops=machine["peaks"].get("fp32", {}).get("gops", 0.0))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print()
    print(gemm.format_summary(rows))
    command = "sparsecpu " + " ".join(shlex.quote(a) for a in args.argv)
    try:
        if args.json:
            gemm.write_json(args.json, rows, machine, command)
        if args.csv:
            gemm.write_csv(args.csv, rows)
        if args.plot:
            from sparsecpu.benchmarks.plots import gemm_speedups

            gemm_speedups(rows, args.plot)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CommandError(f"{exc.filename}: {exc.strerror}", EXIT_INPUT) from None
    return EXIT_OK


# ---- entry point --------------------------------------------------------------

def cmd_bench_model(args) -> int:
    import os
    import tempfile

    import sparsecpu as sc
    from sparsecpu.benchmarks import model as bm

    for d in args.dtype:
        if d not in ("fp32", "int8", "bf16"):
            raise CommandError(f"--dtype {d}: expected fp32, int8 or bf16")
    for s in args.sparsity:
        if not 0.0 <= s < 1.0:
            raise CommandError(f"--sparsity {s:g}: must be in [0, 1)")
    if any(t <= 0 for t in args.threads) or any(b <= 0 for b in args.batch) or any(q <= 0 for q in args.seq):
        raise CommandError("--threads, --batch and --seq take counts >= 1")
    baselines = [b for b in args.baseline if b and b != "none"]
    for b in baselines:
        if b != "onnxruntime":
            raise CommandError(f"--baseline {b}: expected onnxruntime or none")
    rounds, min_seconds = (3, 0.05) if args.quick else (args.repeats, 0.3)
    info = sc.cpu_info()
    print(f"sparsecpu {sc.__version__}, ISA {info['isa']}, {info['model']}; p50/p90 over {rounds} rounds")
    rows = []
    named = {}  # row label -> (the argument that gave it, its path; None: a shape to generate)
    for model in args.models:
        label, _, labelled_path = model.partition("=")
        if model in bm.SHAPES:
            name, path = model, None
        elif os.path.exists(model):
            name, path = os.path.basename(os.path.normpath(model)), model
        elif label and labelled_path and os.path.exists(labelled_path):
            name, path = label, labelled_path
        else:
            raise CommandError(f"{model}: no such file or directory, and not one of {', '.join(bm.SHAPES)}",
                               EXIT_INPUT)
        if name in named:  # their rows would merge in the tables
            raise CommandError(f"{named[name][0]} and {model} are both labelled {name!r}; name one NAME=PATH")
        named[name] = (model, path)
    with tempfile.TemporaryDirectory(prefix="sparsecpu-bench-") as folder:
        for name, (model, path) in named.items():
            if path is None:
                path = bm.generate_bert(os.path.join(folder, model), *bm.SHAPES[model])
            variants = bm.variants_for(args.dtype, args.pattern, args.sparsity)
            try:
                rows += bm.run(name, path, folder, variants, args.batch, args.seq, args.threads, rounds, min_seconds,
                               bool(baselines), lambda row: print(bm.format_row(row), flush=True))
            except (ValueError, FileNotFoundError) as exc:
                raise CommandError(str(exc), EXIT_INPUT) from None
    try:
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"environment": {"cpu": info["model"], "isa": info["isa"]}, "rows": rows}, f, indent=1)
        if args.plot:
            from sparsecpu.benchmarks.plots import model_latency_vs_seq

            model_latency_vs_seq(rows, args.plot)
        if args.markdown:
            with open(args.markdown, "w") as f:
                ratios = "; ratios to onnxruntime int8 in each column" if baselines else ""
                f.write(f"{info['model']}, sparsecpu ISA {info['isa']}{ratios}\n\n")
                f.write(bm.markdown_table(rows))
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CommandError(f"{exc.filename}: {exc.strerror}", EXIT_INPUT) from None
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = _Parser(prog="sparsecpu", description="Sparse inference for transformer encoders on CPUs.")
    parser.add_argument("--version", action="version", version=f"sparsecpu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    info = sub.add_parser("info", help="CPU features, ISA level in use, threads and chosen kernels")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    info.set_defaults(func=cmd_info)

    demo = sub.add_parser("demo", help="embed sentences with all-MiniLM-L6-v2, dense and pruned, fp32 and int8; "
                                       "accuracy and latency vs onnxruntime")
    demo.add_argument("--tokens", type=int, default=128, help="tokens of the single-sequence latency (default 128)")
    demo.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    demo.add_argument("--rounds", type=int, default=5, help="timing rounds (default 5)")
    demo.add_argument("--generated", action="store_true",
                      help="use a generated model of all-MiniLM-L6-v2's shape with random weights")
    demo.set_defaults(func=cmd_demo)

    pr = sub.add_parser("prune", help="prune an ONNX model's linear layers into a kernel pattern")
    pr.add_argument("input", help="ONNX model to read (never modified)")
    pr.add_argument("-o", "--output", required=True, help="ONNX model to write")
    pr.add_argument("--pattern", required=True,
                    help="RxC blocks in (out, in) terms (4x1, 16x1, 1x4, ...), N:M (2:4), or unstructured")
    pr.add_argument("--sparsity", type=float, default=None,
                    help="share of weights zeroed per layer (RxC, unstructured); omit for N:M")
    pr.add_argument("--method", default="magnitude", help="magnitude (default) or activation (needs onnxruntime)")
    pr.add_argument("--calibration", default=None, metavar="N|FILE.npz",
                    help="random-token samples to run (default 8) or an .npz of model inputs")
    pr.add_argument("--include", metavar="REGEX", help="prune only weights whose initializer or node name matches")
    pr.add_argument("--exclude", metavar="REGEX", help="leave dense weights whose initializer or node name matches")
    pr.add_argument("--global", dest="global_sparsity", action="store_true",
                    help="reach --sparsity over all pruned weights together instead of per layer")
    pr.add_argument("--quiet", action="store_true", help="print nothing on success")
    pr.add_argument("--force", action="store_true", help="replace the output file if it exists")
    pr.set_defaults(func=cmd_prune)

    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="KIND", parser_class=_Parser)
    bench_sub.required = True
    bm = bench_sub.add_parser("model", help="whole encoders: sparsecpu variants vs onnxruntime fp32/int8, one run")
    bm.add_argument("models", nargs="+", metavar="MODEL",
                    help="an .onnx file, a Hugging Face directory (either as NAME=PATH to name its rows), or a "
                         "generated shape: bert-mini, minilm, distilbert, bert-base, bert-large (random weights)")
    bm.add_argument("--batch", type=_csv(int), default=[1, 8])
    bm.add_argument("--seq", type=_csv(int), default=[128])
    bm.add_argument("--threads", type=_csv(int), default=[1])
    bm.add_argument("--dtype", type=_csv(str), default=["int8"])
    bm.add_argument("--pattern", type=_csv(str), default=["4x1"])
    bm.add_argument("--sparsity", type=_csv(float), default=[0.9])
    bm.add_argument("--baseline", type=_csv(str), default=["onnxruntime"], help="onnxruntime or none")
    bm.add_argument("--repeats", type=int, default=5)
    bm.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    bm.add_argument("--json", help="write the rows to this file")
    bm.add_argument("--plot", help="write latency vs sequence length to this PNG (needs matplotlib)")
    bm.add_argument("--markdown", metavar="FILE",
                    help="write a table: a line per model and variant, a column per batch and threads")
    bm.set_defaults(func=cmd_bench_model)
    g = bench_sub.add_parser("gemm", help="GEMM shapes: sparse kernels vs dense baselines in one run")
    g.add_argument("--shapes", nargs="+", default=["goal"],
                   help="presets (goal, bert, bert-base, bert-large, bert-mini) or M,N,K triples (default goal)")
    g.add_argument("--sparsity", type=_csv(float), default=[0.7, 0.8, 0.9], help="comma list (default 0.7,0.8,0.9)")
    g.add_argument("--pattern", type=_csv(str), default=["16x1", "4x1"], help="comma list (default 16x1,4x1)")
    g.add_argument("--dtype", default="fp32",
                   help="fp32 (default), int8, or bf16 (bf16 kernels only where they pay, see "
                        "SPARSECPU_BF16_PRODUCTS; else fp32 kernels on bf16-rounded values)")
    g.add_argument("--peers-without-amx", action="store_true",
                   help="refuse AMX to this process so peers (onnxruntime) run at the AVX512-VNNI level, as on a "
                        "CPU without AMX; sparsecpu does not use AMX")
    g.add_argument("--threads", type=_csv(int), default=[1, 2], help="comma list (default 1,2)")
    g.add_argument("--repeats", type=int, default=7, help="interleaved rounds; the median is reported (default 7)")
    g.add_argument("--quick", action="store_true", help="3 short rounds: a smoke run, not a measurement")
    g.add_argument("--json", metavar="FILE", help="write rows, machine and geometric means as JSON")
    g.add_argument("--csv", metavar="FILE", help="write rows as CSV")
    g.add_argument("--plot", metavar="FILE", help="write speedup vs sparsity per shape to this PNG (needs matplotlib)")
    g.set_defaults(func=cmd_bench_gemm)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    name = args.command + (f" {args.bench_command}" if getattr(args, "bench_command", None) else "")
    try:
        return args.func(args)
    except CommandError as exc:
        print(f"sparsecpu {name}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"sparsecpu {name}: error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
