import json
import os
import sys

import pytest

import sparsecpu as sc

from conftest import ISA_ORDER, run_python


def test_cpu_info_keys_and_types(cpu):
    assert set(cpu) >= {"vendor", "model", "flags", "isa", "isa_available", "physical_cores", "num_threads"}
    assert isinstance(cpu["flags"], list) and all(isinstance(f, str) for f in cpu["flags"])
    assert cpu["isa"] in cpu["isa_available"]
    assert "ref" in cpu["isa_available"]
    assert set(cpu["isa_available"]) <= set(ISA_ORDER)
    assert cpu["physical_cores"] >= 1 and cpu["num_threads"] >= 1
    assert sc._core.isa_levels() == ISA_ORDER


def test_flags_agree_with_the_kernel():
    flags = set(sc.cpu_info()["flags"])
    try:
        with open("/proc/cpuinfo") as f:
            proc = next(line for line in f if line.startswith("flags")).split(":")[1].split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo")
    for ours, linux in [("avx2", "avx2"), ("avx512f", "avx512f"), ("avx512_vnni", "avx512_vnni"),
                        ("avx_vnni", "avx_vnni"), ("avx512_bf16", "avx512_bf16")]:
        assert (ours in flags) == (linux in proc), ours


def test_version():
    assert sc.__version__.count(".") >= 2


def test_set_num_threads_semantics():
    old = sc.get_num_threads()
    try:
        sc.set_num_threads(3)
        assert sc.get_num_threads() == 3
        assert sc.cpu_info()["num_threads"] == 3
        sc.set_num_threads(0)
        assert sc.get_num_threads() == len(os.sched_getaffinity(0))
        with pytest.raises(ValueError, match="-1"):
            sc.set_num_threads(-1)
        with pytest.raises(TypeError):
            sc.set_num_threads(1.5)
    finally:
        sc.set_num_threads(old)


@pytest.mark.parametrize("value,expected", [("3", 3), ("0", None), ("", None)])
def test_num_threads_environment(value, expected):
    out = run_python("import sparsecpu as sc, os; print(sc.get_num_threads(), len(os.sched_getaffinity(0)))",
                     SPARSECPU_NUM_THREADS=value)
    assert out.returncode == 0, out.stderr
    got, cores = map(int, out.stdout.split())
    assert got == (expected or cores)


def test_bad_num_threads_environment_fails_import():
    out = run_python("import sparsecpu", SPARSECPU_NUM_THREADS="-2")
    assert out.returncode != 0
    assert "SPARSECPU_NUM_THREADS" in out.stderr and "-2" in out.stderr


BF16_PRODUCTS_CHOICE = """
import json, numpy as np, sparsecpu as sc
from sparsecpu import _core
from sparsecpu.compiler.to_onnx import rounded_bf16
lin = sc.SparseLinear(np.ones((32, 32), np.float32), pattern="dense", dtype="bf16")
rng = np.random.default_rng(0)
w = sc.prune_weight(rng.standard_normal((40, 72)).astype(np.float32), "2:4")
semi = sc.SparseLinear(w, pattern="2:4", dtype="bf16")
fp32 = sc.SparseLinear(rounded_bf16(w), pattern="2:4")
# Calls on either side of the 2:4 kernels' switch to row vectors (48 tokens), against fp32 on the rounded values.
x = rounded_bf16(rng.standard_normal((100, 72)).astype(np.float32))
magnitude = np.abs(x) @ np.abs(rounded_bf16(w)).T
error = max(float(np.max(np.abs(semi(x[:m]) - fp32(x[:m])) / magnitude[:m])) for m in (8, 48, 49, 100))
from sparsecpu.compiler import formats
cost_scale = formats._costs("bf16")[(4, 1)] / formats._COST["fp32"][(4, 1)]  # compiler: block vs dense bf16
print(json.dumps(dict(_core.bf16_products(), attention=_core.attention_kernel_for("bf16"), dense_bf16=lin.kernel,
                      semi24_bf16=semi.kernel, semi24_error=error, cost_scale=cost_scale)))
"""


@pytest.mark.parametrize("setting", ["auto", "on", "off"])
def test_bf16_products_setting_decides_the_bf16_kernels(setting, cpu):
    """int8 and bf16 models' attention and dense and 2:4 bf16 layers run bf16 products only where they pay:
    'auto' measures vdpbf16ps against vfmadd231ps (bf16 at 1.25x the rate or more), 'on' takes them
    wherever the ISA level has AVX512-BF16, 'off' never; otherwise fp32 kernels on the rounded values."""
    out = run_python(BF16_PRODUCTS_CHOICE, SPARSECPU_BF16_PRODUCTS=setting)
    assert out.returncode == 0, out.stderr
    choice = json.loads(out.stdout)
    has_bf16 = cpu["isa"] == "avx512_bf16"
    if not has_bf16:
        assert not choice["use"] and "AVX512-BF16" in choice["reason"]
    elif setting == "auto":
        assert choice["bf16_gflops"] > 0 and choice["fp32_gflops"] > 0, choice
        assert choice["use"] == (choice["bf16_gflops"] >= 1.25 * choice["fp32_gflops"]), choice
    else:
        assert choice["use"] == (setting == "on") and setting in choice["reason"], choice
    assert choice["attention"].endswith("_bf16") == choice["use"], choice
    assert (choice["dense_bf16"] == "gemm_bf16_avx512_bf16") == choice["use"], choice
    assert (choice["semi24_bf16"] == "gemm_bf16_semi24_avx512_bf16") == choice["use"], choice
    assert choice["semi24_error"] <= 1e-6, choice
    # The compiler costs block-sparse bf16 layers (fp32 kernels) against the dense bf16 layer that runs.
    assert choice["cost_scale"] == pytest.approx(0.75 if choice["use"] else 1.0), choice


def test_bad_bf16_products_setting_fails_import():
    out = run_python("import sparsecpu", SPARSECPU_BF16_PRODUCTS="yes")
    assert out.returncode != 0
    assert "SPARSECPU_BF16_PRODUCTS" in out.stderr and "'yes'" in out.stderr


@pytest.mark.parametrize("level", ISA_ORDER)
def test_forced_isa_caps_dispatch(level, cpu):
    if level not in cpu["isa_available"]:
        pytest.skip(f"this CPU lacks {level}")
    code = ("import sparsecpu as sc, numpy as np\n"
            "info = sc.cpu_info()\n"
            "lins = [sc.SparseLinear(np.eye(40, dtype=np.float32), pattern=p) for p in ('16x1','4x1','1x4','dense')]\n"
            "print(info['isa'], *[l.kernel for l in lins])\n"
            "x = np.arange(80, dtype=np.float32).reshape(2, 40)\n"
            "assert all(np.array_equal(l(x), x) for l in lins)\n")
    out = run_python(code, SPARSECPU_ISA=level)
    assert out.returncode == 0, out.stderr
    isa, *kernels = out.stdout.split()
    assert isa == level
    for name in kernels:
        kernel_level = next(lv for lv in sorted(ISA_ORDER, key=len, reverse=True) if name.endswith("_" + lv))
        assert ISA_ORDER.index(kernel_level) <= ISA_ORDER.index(level), name


@pytest.mark.parametrize("value", ["avx1024", "AVX2 ", "native"])
def test_unknown_isa_fails_import_naming_it(value):
    out = run_python("import sparsecpu", SPARSECPU_ISA=value)
    assert out.returncode != 0
    assert "ImportError" in out.stderr and f"'{value}'" in out.stderr
    assert "Illegal instruction" not in out.stderr


def test_isa_the_cpu_lacks_fails_import(cpu):
    missing = [lv for lv in ISA_ORDER if lv not in cpu["isa_available"]]
    if not missing:
        pytest.skip("this CPU has every level")
    out = run_python("import sparsecpu", SPARSECPU_ISA=missing[0])
    assert out.returncode != 0 and missing[0] in out.stderr and "lacks" in out.stderr


def test_empty_isa_means_unset(cpu):
    out = run_python("import sparsecpu as sc; print(sc.cpu_info()['isa'])", SPARSECPU_ISA="")
    assert out.returncode == 0 and out.stdout.strip() == cpu["isa_available"][-1]


@pytest.mark.parametrize("level", ISA_ORDER)
def test_kernel_suite_under_forced_isa(level, cpu):
    """Reruns every kernel test (marker `kernels`: fp32, int8, encoder ops, tiny models) with SPARSECPU_ISA capped at `level`."""
    if level not in cpu["isa_available"]:
        pytest.skip(f"this CPU lacks {level}")
    if level == cpu["isa"] and not os.environ.get("SPARSECPU_ISA"):
        pytest.skip("the native level already ran in this process")
    here = os.path.dirname(__file__)
    names = ("test_kernels.py", "test_kernels_s8.py", "test_kernels_semi24.py", "test_kernels_bf16.py",
             "test_encoder_ops.py", "test_compile.py", "test_compile_onnx.py")
    files = [os.path.join(here, name) for name in names]
    out = run_python(
        "import sys, pytest; sys.exit(pytest.main(['-q', '-m', 'kernels', '-p', 'no:cacheprovider', "
        f"*{files!r}]))",
        SPARSECPU_ISA=level)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " passed" in out.stdout
