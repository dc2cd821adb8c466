"""2:4 semi-structured kernels: every registered one, int32 accumulators exact,
fp32 within the documented tolerance, refusals named. Reruns under each forced ISA level."""

import zlib

import numpy as np
import pytest

import sparsecpu as sc
from sparsecpu import SparseLinear, _core

from reference import assert_close_fp32, bf16

pytestmark = pytest.mark.kernels

S8_KERNELS = [k.name for k in _core.spmm_s8_kernels() if k.usable and k.semi24]
F32_KERNELS = [k.name for k in _core.spmm_f32_kernels() if k.usable and k.semi24]
SEMI24_BF16_KERNELS = [name for name, _, usable in _core.gemm_bf16_semi24_kernels() if usable]
# M = 1, K not a multiple of 4 or 8, tails of the token tiles (int8 32 or 64 tokens, fp32 64 or 128)
# and row vectors; the AVX2 int8 kernel's tiles of every count of 8-token vectors (M = 65, 76, 84,
# 96, 97, 45, 56, 64) and its path for calls under 32 tokens; the fp32 kernels' vectors over rows
# for calls of few tokens (AVX2 up to 32, AVX-512 up to 48: M = 1..48 with 33 and 49 past them;
# row counts ending inside a vector's first or second block of 8); several input blocks and row
# slices of the kernels that walk K in blocks.
SHAPES = [(1, 1, 1), (1, 17, 3), (3, 5, 6), (65, 33, 31), (2, 1, 64), (97, 50, 129), (130, 70, 67), (129, 40, 256),
          (70, 531, 300), (76, 40, 20), (84, 8, 16), (96, 24, 12), (31, 24, 12), (45, 33, 40), (56, 17, 9),
          (64, 19, 5), (13, 29, 18), (6, 9, 10), (16, 21, 14), (17, 12, 9), (32, 9, 7), (33, 50, 70),
          (48, 27, 22), (49, 40, 13)]


def seeded(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def random_2_4(rng, n, k, keep=2, dtype=np.float32):
    """A weight with `keep` (0, 1 or 2) random nonzeros in every group of four inputs."""
    groups = -(-k // 4)
    w = np.zeros((n, groups * 4), dtype)
    for r in range(n):
        for g in range(groups):
            for i in rng.choice(4, size=keep, replace=False):
                w[r, g * 4 + i] = rng.integers(-128, 128) if dtype == np.int8 else rng.standard_normal()
    return np.ascontiguousarray(w[:, :k])


def exact(x, w):
    return x.astype(np.int64) @ w.astype(np.int64).T


@pytest.mark.parametrize("kernel", S8_KERNELS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_int32_accumulators_are_exact(kernel, shape):
    m, n, k = shape
    rng = seeded(kernel, shape)
    w = random_2_4(rng, n, k, keep=[2, 1, 0][sum(shape) % 3] if n > 8 else 2, dtype=np.int8)
    w[: n // 3] = 0  # all-zero rows
    x = rng.integers(0, 256, (m, k)).astype(np.uint8)
    lin = _core.LinearS8.from_int8(w, "2:4", 1, 1, kernel)
    assert lin.kernel == kernel
    np.testing.assert_array_equal(lin.forward_s32(x), exact(x, w))


@pytest.mark.parametrize("kernel", S8_KERNELS)
@pytest.mark.parametrize("weight", [127, -128])
def test_saturation_edges(kernel, weight):
    for k in (4, 1023, 4096):
        w = np.zeros((20, k), np.int8)
        w[:, 0::4] = weight
        w[:, 3::4] = weight
        for m in (5, 70):  # the AVX2 kernel's paths for few and many tokens
            x = np.full((m, k), 255, np.uint8)
            np.testing.assert_array_equal(_core.LinearS8.from_int8(w, "2:4", 1, 1, kernel).forward_s32(x),
                                          exact(x, w))


@pytest.mark.parametrize("kernel", F32_KERNELS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("activation", [None, "gelu"])
def test_fp32_within_tolerance(kernel, shape, activation):
    m, n, k = shape
    rng = seeded(kernel, shape, activation)
    w = random_2_4(rng, n, k, keep=2 if n < 40 else 1)
    x = rng.standard_normal((m, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    residual = rng.standard_normal((m, n)).astype(np.float32)
    lin = SparseLinear(w, bias, pattern="2:4", activation=activation, kernel=kernel)
    assert lin.kernel == kernel
    assert_close_fp32(lin(x, residual=residual), x, w, bias, activation, residual)
    assert_close_fp32(lin(x), x, w, bias, activation)


@pytest.mark.parametrize("shape", [(1, 17, 3), (97, 50, 129), (130, 70, 256)], ids=str)
def test_int8_float_path_matches_dense_int8(shape):
    """Same quantization, same integer sums, same epilogue: the 2:4 and dense int8 layers agree."""
    m, n, k = shape
    rng = seeded("int8", shape)
    w = random_2_4(rng, n, k)
    x = rng.standard_normal((m, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    residual = rng.standard_normal((m, n)).astype(np.float32)
    semi = SparseLinear(w, bias, pattern="2:4", dtype="int8", activation="gelu")
    dense = SparseLinear(w, bias, pattern="dense", dtype="int8", activation="gelu")
    np.testing.assert_allclose(semi(x, residual=residual), dense(x, residual=residual), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(semi(x, out_scale=0.05), dense(x, out_scale=0.05))


def test_bf16_is_fp32_on_rounded_values():
    rng = seeded("bf16")
    w = random_2_4(rng, 40, 72)
    x = rng.standard_normal((33, 72)).astype(np.float32)

    layer = SparseLinear(w, pattern="2:4", dtype="bf16")
    y, expected = layer(x), SparseLinear(bf16(w), pattern="2:4")(bf16(x))
    if layer.kernel.startswith("gemm_bf16_"):
        # vdpbf16ps (where bf16 products pay): the same products in the same order, but a core
        # or emulation may round a pair's two products together (SIMDe's does: 1-ulp differences).
        magnitude = np.abs(bf16(x)).astype(np.float64) @ np.abs(bf16(w)).T.astype(np.float64)
        assert np.all(np.abs(y - expected) <= 1e-6 * magnitude)
    else:  # the fp32 2:4 kernel on the rounded values
        np.testing.assert_array_equal(y, expected)


def test_matches_the_same_weight_in_other_layouts():
    rng = seeded("layouts")
    w = sc.prune_weight(rng.standard_normal((96, 200)).astype(np.float32), "2:4")
    x = rng.standard_normal((50, 200)).astype(np.float32)
    semi = SparseLinear(w, pattern="2:4")
    assert semi.density == pytest.approx(0.5)
    assert semi.packed_bytes < SparseLinear(w, pattern="dense").packed_bytes
    np.testing.assert_allclose(semi(x), SparseLinear(w, pattern="dense")(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["fp32", "int8", "bf16"])
def test_weight_breaking_2_4_is_refused_naming_row_and_group(dtype):
    w = np.zeros((5, 13), np.float32)
    w[:, 0] = w[:, 1] = 1.0
    w[3, 8:11] = 2.0  # row 3, group 2: three nonzeros
    with pytest.raises(ValueError, match=r"breaks 2:4: row 3, group 2 \(inputs 8\.\.11\)"):
        SparseLinear(w, pattern="2:4", dtype=dtype)
    w[3, 12] = 1.0
    w[3, 8] = 0.0
    SparseLinear(w, pattern="2:4", dtype=dtype)  # the short last group holds one


def test_other_n_m_patterns_and_mismatched_kernels_are_refused():
    w = sc.prune_weight(np.ones((8, 8), np.float32), "2:4")
    for pattern in ("1:4", "2:8"):
        with pytest.raises(ValueError, match=f"pattern '{pattern}'.*2:4 only"):
            SparseLinear(w, pattern=pattern)
    with pytest.raises(ValueError, match="does not run 2:4 weights"):
        SparseLinear(w, pattern="2:4", kernel="spmm_f32_ref")
    with pytest.raises(ValueError, match="does not run 4x1 weights"):
        SparseLinear(w, pattern="4x1", kernel="spmm_f32_semi24_ref")
    with pytest.raises(ValueError, match="does not run 2:4 int8 weights"):
        SparseLinear(w, pattern="2:4", dtype="int8", kernel="spmm_s8_dense_ref")
    with pytest.raises(ValueError, match="does not run dense int8 weights"):
        SparseLinear(w, pattern="dense", dtype="int8", kernel="spmm_s8_semi24_ref")
    with pytest.raises(ValueError, match="not finite"):
        SparseLinear(np.full((2, 4), np.nan, np.float32), pattern="2:4")


def test_threads_give_identical_results():
    rng = seeded("threads")
    w = random_2_4(rng, 300, 96)
    for m in (10, 20, 40, 200):  # the AVX2 kernels' designs for few and many tokens, and several tiles
        x = rng.standard_normal((m, 96)).astype(np.float32)
        for dtype in ("fp32", "int8", "bf16"):
            lin = SparseLinear(w, pattern="2:4", dtype=dtype)
            np.testing.assert_array_equal(lin._impl.forward(x, None, 1), lin._impl.forward(x, None, 2))
        for kernel in SEMI24_BF16_KERNELS:  # rows split between threads, a tile's variants built once per thread
            lin = _core.LinearBF16(w, None, "2:4", 1, 1, "none", kernel)
            np.testing.assert_array_equal(lin.forward(x, None, 1), lin.forward(x, None, 2))
