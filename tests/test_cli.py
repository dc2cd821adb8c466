import json
import os
import subprocess
import sys

import pytest

from conftest import run_python

CLI = "import sys; from sparsecpu.cli import main; sys.exit(main(sys.argv[1:]))"


def sparsecpu(*args, **env):
    code = CLI.replace("sys.argv[1:]", repr(list(args)))
    return run_python(code, **env)


def test_version():
    out = sparsecpu("--version")
    assert out.returncode == 0 and out.stdout.startswith("sparsecpu ")


def test_info_json_matches_cpu_info():
    out = sparsecpu("info", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["isa"] in info["isa_available"]
    assert set(info["fp32_kernels"]) == {"16x1", "8x1", "4x1", "1x4", "1x1", "2:4", "dense"}
    assert "semi24" in info["int8_kernels"]["2:4"]


def test_info_text_under_forced_isa():
    out = sparsecpu("info", SPARSECPU_ISA="ref")
    assert out.returncode == 0, out.stderr
    assert "isa in use:     ref" in out.stdout and "spmm_f32_ref" in out.stdout


def test_demo_embeds_and_compares_variants():
    out = sparsecpu("demo", "--generated", "--tokens", "32", "--threads", "1", "--rounds", "1")
    assert out.returncode == 0, out.stderr
    assert "generated BERT-shaped model" in out.stdout
    for variant in ("sparsecpu fp32, dense", "sparsecpu int8, dense", "20% unstructured (activation)",
                    "4x1 at 90%"):
        assert variant in out.stdout
    rows = [line for line in out.stdout.splitlines() if line.strip().startswith(("sparsecpu ", "onnxruntime "))]
    fp32 = next(r for r in rows if "fp32, dense" in r)
    assert "1.0000 / 1.0000" in fp32
    if any(r.strip().startswith("onnxruntime fp32") for r in rows):  # our exported file, run by onnxruntime
        assert "1.0000 / 1.0000" in next(r for r in rows if r.strip().startswith("onnxruntime fp32"))


def test_bench_model_on_a_file_with_baselines(tmp_path):
    js, md = tmp_path / "m.json", tmp_path / "m.md"
    model = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tiny_distilbert.onnx")
    out = sparsecpu("bench", "model", f"tiny={model}", "--batch", "1,2", "--seq", "16", "--dtype", "fp32,int8",
                    "--sparsity", "0.8", "--quick", "--json", str(js), "--markdown", str(md))
    assert out.returncode == 0, out.stderr
    rows = json.loads(js.read_text())["rows"]
    assert {r["model"] for r in rows} == {"tiny"}  # NAME=PATH names the rows
    table = [line for line in md.read_text().splitlines() if line.startswith("| tiny |")]
    assert len(table) == len({r["variant"] for r in rows})
    variants = {r["variant"] for r in rows}
    assert {"fp32 dense", "int8 dense", "fp32 4x1 80%", "int8 4x1 80%"} <= variants
    assert all(r["p90_ms"] >= r["p50_ms"] > 0 for r in rows)
    if "onnxruntime int8" in variants:
        assert all(r["vs_onnxruntime_int8"] for r in rows)
    assert "p50" in out.stdout and "seq/s" in out.stdout


def test_bench_model_refuses_two_models_with_one_label(tmp_path):
    model = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tiny_distilbert.onnx")
    out = sparsecpu("bench", "model", f"tiny={model}", f"tiny={model}", "--quick")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "both labelled 'tiny'" in out.stderr and "NAME=PATH" in out.stderr
    assert "seq/s" not in out.stdout  # refused before anything ran


def test_bench_model_variants_dense_and_n_m_take_no_sparsity():
    from sparsecpu.benchmarks.model import variants_for

    names = [v.name for v in variants_for(["int8"], ["dense", "2:4", "4x1"], [0.8, 0.9])]
    assert names == ["int8 dense", "int8 2:4", "int8 4x1 80%", "int8 4x1 90%"]


def test_bench_model_markdown_table_layout():
    from sparsecpu.benchmarks.model import markdown_table

    def row(model, variant, batch, threads, ms, ratio):
        return {"model": model, "variant": variant, "batch": batch, "seq": 128, "threads": threads, "p50_ms": ms,
                "seq_per_s": batch * 1e3 / ms, "vs_onnxruntime_int8": ratio}

    rows = [row("a", "int8 4x1 90%", 1, 1, 10.0, 2.0), row("a", "onnxruntime int8", 1, 1, 20.0, 1.0),
            row("a", "int8 4x1 90%", 8, 2, 40.0, 3.0), row("b", "int8 dense", 1, 1, 5.0, None)]
    lines = markdown_table(rows).splitlines()
    assert lines[0] == "| model | variant | batch 1, 1 thread | batch 8, 2 threads |"
    assert lines[2] == "| a | onnxruntime int8 | 20.0 ms (1.00x) |  |"  # baselines first, missing cells empty
    assert lines[3] == "| a | int8 4x1 90% | 10.0 ms (2.00x) | 200.0 seq/s (3.00x) |"  # batches > 1: throughput
    assert lines[4] == "| b | int8 dense | 5.0 ms |  |"
    with pytest.raises(ValueError):
        markdown_table([])


def test_bench_gemm_quick_writes_json_and_csv(tmp_path):
    js, cs = tmp_path / "r.json", tmp_path / "r.csv"
    out = sparsecpu("bench", "gemm", "--shapes", "17,40,33", "--sparsity", "0.5,0.9", "--pattern", "4x1",
                    "--threads", "1", "--quick", "--json", str(js), "--csv", str(cs))
    assert out.returncode == 0, out.stderr
    data = json.loads(js.read_text())
    variants = [r["variant"] for r in data["rows"]]
    assert variants == ["numpy dense", "sparsecpu dense", "4x1 @ 0.5", "4x1 @ 0.9"]
    assert all(r["percent_of_peak"] > 0 for r in data["rows"])
    assert all(r["ms"] > 0 and r["threads"] == 1 for r in data["rows"])
    assert data["machine"]["isa"] and "bench gemm" in data["command"]
    assert len(cs.read_text().strip().splitlines()) == 5
    assert "geometric mean" in out.stdout


def test_bench_gemm_int8_quick(tmp_path):
    js = tmp_path / "r.json"
    out = sparsecpu("bench", "gemm", "--dtype", "int8", "--shapes", "20,48,40", "--sparsity", "0.8",
                    "--pattern", "4x1,1x4,2:4", "--threads", "1", "--quick", "--json", str(js))
    assert out.returncode == 0, out.stderr
    rows = json.loads(js.read_text())["rows"]
    ours = {r["variant"]: r for r in rows}
    assert {"sparsecpu dense", "4x1 @ 0.8", "1x4 @ 0.8", "2:4 @ 0.5"} <= set(ours)  # N:M fixes its sparsity
    assert ours["4x1 @ 0.8"]["kernel"].startswith("spmm_s8_quads")
    assert ours["2:4 @ 0.5"]["kernel"].startswith("spmm_s8_semi24")
    assert all(r["dtype"] == "int8" for r in rows)


def test_bench_gemm_bf16_quick(tmp_path, cpu):
    js = tmp_path / "r.json"
    out = sparsecpu("bench", "gemm", "--dtype", "bf16", "--shapes", "60,48,40", "--pattern", "2:4,4x1",
                    "--sparsity", "0.8", "--threads", "1", "--quick", "--json", str(js),
                    SPARSECPU_BF16_PRODUCTS="on")
    assert out.returncode == 0, out.stderr
    data = json.loads(js.read_text())
    ours = {r["variant"]: r for r in data["rows"]}
    assert {"numpy dense", "sparsecpu dense", "2:4 @ 0.5", "4x1 @ 0.8"} <= set(ours)
    for row in data["rows"]:  # % of the peak of the products the row ran: vdpbf16ps, or fp32 FMA
        kind = "bf16" if row["kernel"].startswith("gemm_bf16") else "fp32"
        assert row["percent_of_peak"] == pytest.approx(100 * row["gops_real"] / data["machine"]["peaks"][kind]["gops"])
    has_bf16 = cpu["isa"] == "avx512_bf16"
    assert (ours["2:4 @ 0.5"]["kernel"] == "gemm_bf16_semi24_avx512_bf16") == has_bf16
    assert (ours["sparsecpu dense"]["kernel"] == "gemm_bf16_avx512_bf16") == has_bf16
    assert ours["4x1 @ 0.8"]["kernel"].startswith("spmm_f32_")  # block-sparse bf16: fp32 kernels on rounded values


@pytest.mark.parametrize("args,words", [
    (["bench", "gemm", "--shapes", "12,x,3"], ["--shapes", "12,x,3"]),
    (["bench", "gemm", "--sparsity", "1.5"], ["--sparsity", "1.5"]),
    (["bench", "gemm", "--pattern", "1:4"], ["1:4"]),
    (["bench", "gemm", "--dtype", "int4"], ["--dtype", "int4"]),
    (["bench", "gemm", "--threads", "0"], ["--threads"]),
    (["demo", "--tokens", "0"], ["--tokens"]),
    (["frobnicate"], ["frobnicate"]),
])
def test_usage_errors_are_one_line_exit_2(args, words):
    out = sparsecpu(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith("sparsecpu")
    for word in words:
        assert word in lines[0]


def test_unwritable_output_is_exit_1(tmp_path):
    out = sparsecpu("bench", "gemm", "--shapes", "4,16,16", "--sparsity", "0.5", "--pattern", "4x1", "--threads",
                    "1", "--quick", "--json", str(tmp_path / "missing" / "r.json"))
    assert out.returncode == 1 and "missing" in out.stderr and "Traceback" not in out.stderr


def test_bad_isa_environment_is_one_line_for_the_command():
    exe = os.path.join(os.path.dirname(sys.executable), "sparsecpu")
    if not os.path.exists(exe):
        pytest.skip("console script not installed next to this interpreter")
    out = subprocess.run([exe, "info"], capture_output=True, text=True,
                         env=dict(os.environ, SPARSECPU_ISA="avx9000"), timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == out.stderr.strip().splitlines()[0] and "avx9000" in out.stderr


def test_bench_plots(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "g.png"
    out = sparsecpu("bench", "gemm", "--shapes", "17,40,33", "--sparsity", "0.5,0.9", "--pattern", "4x1",
                    "--threads", "1", "--quick", "--plot", str(png))
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
