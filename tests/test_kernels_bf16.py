"""bf16 linear layers: every registered bf16 kernel and the fp32-on-rounded-values path,
against float64 products of the bf16-rounded operands."""

import numpy as np
import pytest

import sparsecpu as sc
from sparsecpu import _core
from sparsecpu.compiler.to_onnx import rounded_bf16

from conftest import kernel_isa
from reference import linear_reference

pytestmark = pytest.mark.kernels

BF16_KERNELS = [name for name, _, usable in _core.gemm_bf16_kernels() if usable]
SEMI24_BF16_KERNELS = [name for name, _, usable in _core.gemm_bf16_semi24_kernels() if usable]
SHAPES = [(1, 1, 1), (5, 17, 3), (33, 80, 96), (7, 16, 64), (64, 200, 31), (130, 48, 770)]


def check(actual, x, w, bias=None, activation=None, residual=None):
    """fp32 summation of exact bf16 products: the fp32 bound of the kernel tests on the rounded operands."""
    expected, magnitude = linear_reference(rounded_bf16(x), rounded_bf16(w), bias, activation, residual)
    bound = 1e-5 * (magnitude + np.abs(expected)) + 1e-30
    assert actual.shape == expected.shape
    assert np.all(np.abs(actual - expected) <= bound), np.max(np.abs(actual - expected) / bound)


def test_rounding_is_nearest_even():
    values = np.array([1.0, 1.00390625, 1.01171875, -2.5, 3.0e38, np.inf, -np.inf], np.float32)
    # 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even one (1).
    np.testing.assert_array_equal(rounded_bf16(values)[:3], np.array([1.0, 1.0, 1.015625], np.float32))
    assert np.isnan(rounded_bf16(np.array([np.nan], np.float32)))[0]


@pytest.mark.parametrize("kernel", BF16_KERNELS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_bf16_kernels_match_reference(kernel, m, n, k, rng):
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    residual = rng.standard_normal((m, n)).astype(np.float32)
    lin = _core.LinearBF16(w, bias, "dense", 1, 1, "gelu", kernel)
    assert lin.kernel == kernel and kernel_isa(kernel) in ("ref", "avx512_bf16")
    check(lin.forward(x, residual), x, w, bias, "gelu", residual)
    check(_core.LinearBF16(w, None, "dense", 1, 1, "none", kernel).forward(x), x, w)


# 2:4: K not a multiple of 4 (a short last group), rows not a multiple of 16, one
# token, both sides of the switch from row vectors to token tiles (48 tokens), tiles of
# 128 tokens with a short last one.
SEMI24_SHAPES = [(1, 1, 1), (5, 17, 3), (33, 80, 96), (48, 40, 30), (49, 16, 64), (130, 48, 770), (300, 37, 31),
                 (150, 300, 40)]  # more rows than a slice (256): sums of a second slice


@pytest.mark.parametrize("kernel", SEMI24_BF16_KERNELS)
@pytest.mark.parametrize("m,n,k", SEMI24_SHAPES)
def test_semi24_bf16_kernels_match_reference(kernel, m, n, k, rng):
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = sc.prune_weight(rng.standard_normal((n, k)).astype(np.float32), "2:4")
    bias = rng.standard_normal(n).astype(np.float32)
    residual = rng.standard_normal((m, n)).astype(np.float32)
    lin = _core.LinearBF16(w, bias, "2:4", 1, 1, "gelu", kernel)
    assert lin.kernel == kernel and kernel_isa(kernel) in ("ref", "avx512_bf16")
    y = lin.forward(x, residual)
    check(y, x, w, bias, "gelu", residual)
    check(_core.LinearBF16(w, None, "2:4", 1, 1, "none", kernel).forward(x), x, w)
    if kernel_isa(kernel) != "ref":
        # Slot 0 in the high half of each pair, which vdpbf16ps multiplies first: a group sums in the
        # order of the fp32 2:4 kernel on the rounded values (bit for bit on the Sapphire Rapids-class
        # core the kernel was written on); the bound leaves room for a vdpbf16ps rounding otherwise.
        fp32 = sc.SparseLinear(rounded_bf16(w), bias, pattern="2:4", activation="gelu")
        fp32 = fp32(rounded_bf16(x), residual=residual)
        _, magnitude = linear_reference(rounded_bf16(x), rounded_bf16(w))
        assert np.all(np.abs(y - fp32) <= 1e-6 * (magnitude + np.abs(fp32)) + 1e-30)


def test_semi24_bf16_kernel_takes_nan_and_refuses_what_it_cannot_run(rng):
    w = sc.prune_weight(rng.standard_normal((16, 8)).astype(np.float32), "2:4")
    for kernel in SEMI24_BF16_KERNELS:
        for m in (3, 60):  # row vectors, token tiles
            x = np.ones((m, 8), np.float32)
            x[1, :] = np.nan  # a NaN token's outputs are NaN, the others' are not
            y = _core.LinearBF16(w, None, "2:4", 1, 1, "none", kernel).forward(x)
            assert np.isnan(y[1]).all() and np.isfinite(np.delete(y, 1, axis=0)).all()
        with pytest.raises(ValueError, match="runs 2:4 weights only"):
            _core.LinearBF16(w, None, "dense", 1, 1, "none", kernel)
        with pytest.raises(ValueError, match="breaks 2:4: row 0, group 0"):
            _core.LinearBF16(np.ones((16, 8), np.float32), None, "2:4", 1, 1, "none", kernel)
    for kernel in BF16_KERNELS:
        with pytest.raises(ValueError, match="runs dense weights only"):
            _core.LinearBF16(w, None, "2:4", 1, 1, "none", kernel)


@pytest.mark.parametrize("pattern", ["dense", "4x1", "16x1", "1x4"])
def test_sparse_linear_bf16_any_pattern(pattern, rng):
    w = sc.prune_weight(rng.standard_normal((96, 130)).astype(np.float32), "4x1", 0.7) if pattern != "dense" \
        else rng.standard_normal((96, 130)).astype(np.float32)
    x = rng.standard_normal((3, 11, 130))
    lin = sc.SparseLinear(w, None, pattern=pattern, dtype="bf16", activation="relu")
    assert lin.dtype == "bf16"
    y = lin(x)
    check(y.reshape(-1, 96), x.reshape(-1, 130).astype(np.float32), w, activation="relu")


def test_bf16_kernel_runs_where_the_cpu_has_it_and_bf16_products_pay(cpu):
    lin = sc.SparseLinear(np.ones((32, 32), np.float32), pattern="dense", dtype="bf16")
    semi = sc.SparseLinear(sc.prune_weight(np.ones((32, 32), np.float32), "2:4"), pattern="2:4", dtype="bf16")
    if cpu["isa"] == "avx512_bf16" and _core.bf16_products()["use"]:
        assert lin.kernel == "gemm_bf16_avx512_bf16"
        assert semi.kernel == "gemm_bf16_semi24_avx512_bf16"
    else:  # fp32 kernels on the bf16-rounded values
        assert lin.kernel in ("spmm_f32_ref",) or lin.kernel.startswith("spmm_f32_dense_")
        assert semi.kernel in ("spmm_f32_ref",) or semi.kernel.startswith("spmm_f32_semi24_")


def test_bf16_nan_propagates():
    w = np.ones((16, 4), np.float32)
    x = np.array([[1.0, np.nan, 2.0, 3.0]], np.float32)
    assert np.isnan(sc.SparseLinear(w, pattern="dense", dtype="bf16")(x)).all()
