"""SparseLinear's call contract: shapes, dtypes, strides, errors."""

import numpy as np
import pytest

import sparsecpu as sc

from conftest import isa_rank, kernel_isa
from reference import assert_close_fp32


def _usable_kernel_without_4x1():
    for k in sc._core.spmm_f32_kernels():
        if k.usable and 4 not in k.block_rows:
            return k.name
    pytest.skip("every usable kernel runs 4x1")


@pytest.fixture
def weights(rng):
    w = sc.prune_weight(rng.standard_normal((48, 40)).astype(np.float32), "4x1", 0.75)
    return w, rng.standard_normal(48).astype(np.float32)


def test_leading_batch_dims_and_float_dtypes(weights, rng):
    w, b = weights
    lin = sc.SparseLinear(w, b, pattern="4x1", activation="gelu")
    for dtype in (np.float16, np.float32, np.float64):
        x = rng.standard_normal((2, 3, 5, 40)).astype(dtype)
        y = lin(x)
        assert y.shape == (2, 3, 5, 48) and y.dtype == np.float32
        assert_close_fp32(y.reshape(-1, 48), x.astype(np.float32).reshape(-1, 40), w, b, "gelu")
    y1 = lin(rng.standard_normal(40))
    assert y1.shape == (48,)


def test_non_contiguous_input_and_residual(weights, rng):
    w, b = weights
    lin = sc.SparseLinear(w, b, pattern="16x1")
    base = rng.standard_normal((40, 30)).astype(np.float32)
    x = base.T[::2]  # (15, 40), strided and transposed
    assert not x.flags.c_contiguous
    res_base = rng.standard_normal((48, 15)).astype(np.float32)
    residual = res_base.T
    y = lin(x, residual=residual)
    assert_close_fp32(y, np.ascontiguousarray(x), w, b, residual=np.ascontiguousarray(residual))


def test_empty_batch_returns_empty(weights):
    w, b = weights
    lin = sc.SparseLinear(w, b)
    assert lin(np.zeros((0, 40), np.float32)).shape == (0, 48)
    assert lin(np.zeros((3, 0, 40), np.float32)).shape == (3, 0, 48)


def test_properties(weights):
    w, b = weights
    lin = sc.SparseLinear(w, b, pattern="4x1")
    assert lin.pattern == "4x1" and lin.dtype == "fp32"
    assert lin.density == pytest.approx(np.count_nonzero(w) / w.size)
    assert isa_rank(kernel_isa(lin.kernel)) <= isa_rank(sc.cpu_info()["isa"])
    dense = sc.SparseLinear(w, b, pattern="dense")
    assert dense.pattern == "dense" and ("dense" in dense.kernel or dense.kernel == "spmm_f32_ref")  # ref runs all
    assert "4x1" in repr(lin)
    # 75% of 4x1 blocks pruned: packed weights are about a quarter of dense.
    assert lin.packed_bytes < 0.4 * w.nbytes


def test_unpruned_weight_is_exact_under_any_block_pattern(rng):
    w = rng.standard_normal((23, 19)).astype(np.float32)
    w[rng.random(w.shape) < 0.6] = 0.0  # scattered zeros: no whole block empty
    x = rng.standard_normal((9, 19)).astype(np.float32)
    for pattern in ["16x1", "4x1", "1x4", "8x8", "2x16", "unstructured"]:
        assert_close_fp32(sc.SparseLinear(w, pattern=pattern)(x), x, w)


@pytest.mark.parametrize("call,error,words", [
    (lambda w, x: sc.SparseLinear(w[0]), ValueError, ["2-D", "(40,)"]),
    (lambda w, x: sc.SparseLinear(w.astype(np.int32)), TypeError, ["int32"]),
    (lambda w, x: sc.SparseLinear(w, np.zeros(5, np.float32)), ValueError, ["bias", "(48,)", "(5,)"]),
    (lambda w, x: sc.SparseLinear(w, pattern="3x1"), ValueError, ["3x1"]),
    (lambda w, x: sc.SparseLinear(w, pattern="banana"), ValueError, ["banana"]),
    (lambda w, x: sc.SparseLinear(w, pattern="2:4"), ValueError, ["2:4"]),
    (lambda w, x: sc.SparseLinear(w, dtype="fp64"), ValueError, ["fp64"]),
    (lambda w, x: sc.SparseLinear(w, dtype="fp16"), ValueError, ["fp16"]),
    (lambda w, x: sc.SparseLinear(w, activation="tanh"), ValueError, ["tanh"]),
    (lambda w, x: sc.SparseLinear(w, kernel="spmm_f32_nope"), ValueError, ["spmm_f32_nope"]),
    (lambda w, x: sc.SparseLinear(w, pattern="4x1", kernel=_usable_kernel_without_4x1()), ValueError,
     ["does not run", "4x1"]),
    (lambda w, x: sc.SparseLinear(w)(x[:, :39]), ValueError, ["(..., 40)", "(7, 39)"]),
    (lambda w, x: sc.SparseLinear(w)(np.zeros((7, 39), np.float32)), ValueError, ["(..., 40)", "(7, 39)"]),
    (lambda w, x: sc.SparseLinear(w, dtype="int8")(np.zeros((7, 39), np.float32)), ValueError,
     ["(..., 40)", "(7, 39)"]),
    (lambda w, x: sc.SparseLinear(w)(x.astype(np.int64)), TypeError, ["int64"]),
    (lambda w, x: sc.SparseLinear(w)(np.float32(1.0)), ValueError, ["(..., 40)", "()"]),
    (lambda w, x: sc.SparseLinear(w)(x, residual=np.zeros((7, 47))), ValueError, ["residual", "(7, 48)", "(7, 47)"]),
    (lambda w, x: sc.SparseLinear(w)(x, residual=np.zeros((7, 48), np.int8)), TypeError, ["residual", "int8"]),
])
def test_bad_input_names_the_problem(weights, call, error, words):
    w, _ = weights
    x = np.zeros((7, 40), np.float32)
    with pytest.raises(error) as info:
        call(w, x)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_concurrent_calls_match_serial(weights, rng):
    from concurrent.futures import ThreadPoolExecutor

    w, b = weights
    lin = sc.SparseLinear(w, b, pattern="16x1", activation="gelu")
    inputs = [rng.standard_normal((int(rng.integers(1, 80)), 40)).astype(np.float32) for _ in range(64)]
    serial = [lin(x) for x in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lin, inputs))
    for s, p in zip(serial, parallel):
        np.testing.assert_array_equal(s, p)


def test_works_in_a_forked_child(weights, rng):
    import multiprocessing

    w, b = weights
    lin = sc.SparseLinear(w, b, pattern="4x1")
    x = rng.standard_normal((50, 40)).astype(np.float32)
    expected = lin(x)  # starts the thread pool in the parent
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply(_forward_in_child, (w, b, x))
    np.testing.assert_array_equal(got, expected)


def _forward_in_child(w, b, x):
    sc.set_num_threads(2)
    return sc.SparseLinear(w, b, pattern="4x1")(x)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0), (17, 0)])
@pytest.mark.parametrize("pattern", ["16x1", "4x1", "2:4", "dense"])
@pytest.mark.parametrize("dtype", ["fp32", "int8", "bf16"])
def test_zero_sized_weights(shape, pattern, dtype):
    # A call with real sums first, so scratch a kernel reuses holds stale values.
    warm = np.zeros((300, 8), np.float32)
    warm[:, ::2] = 1
    sc.SparseLinear(warm, pattern=pattern, dtype=dtype)(np.ones((70, 8), np.float32))
    bias = np.linspace(-1, 1, shape[0]).astype(np.float32)
    lin = sc.SparseLinear(np.zeros(shape, np.float32), bias, pattern=pattern, dtype=dtype, activation="relu")
    for m in (3, 40):  # kernels may take other paths for few and many tokens
        y = lin(np.ones((m, shape[1]), np.float32))
        np.testing.assert_array_equal(y, np.broadcast_to(np.maximum(bias, 0), (m, shape[0])))
    assert lin.density == 0.0
