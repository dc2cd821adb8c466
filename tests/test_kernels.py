"""Every registered fp32 kernel against float64 ground truth and the scalar reference.

Runs again under each forced ISA level (tests/test_isa_levels.py)."""

import itertools
import zlib

import numpy as np
import pytest

import sparsecpu as sc
from sparsecpu import _core

from conftest import isa_rank, kernel_isa
from reference import UNSTAGED_EXTRA_CHANNELS, assert_close_fp32, staging_inputs

pytestmark = pytest.mark.kernels

KERNELS = [k for k in _core.spmm_f32_kernels() if k.usable and not k.semi24]  # 2:4: test_kernels_semi24.py
BLOCK_PATTERNS = [f"{r}x{c}" for r in (1, 2, 4, 8, 16) for c in (1, 2, 4, 8, 16)]
# (tokens, out, in): ones, primes, non-multiples of every tile and block,
# out or in smaller than a block, and one BERT-sized shape.
SHAPES = [(1, 1, 1), (1, 17, 3), (3, 5, 2), (16, 16, 16), (17, 33, 31), (2, 1, 64), (97, 50, 129),
          (40, 129, 67), (128, 96, 256)]
SPARSITIES = [0.0, 0.5, 0.9, 0.99, 1.0]
EPILOGUES = [(False, None, False), (True, "gelu", False), (True, "relu", True), (False, None, True),
             (True, None, False)]


def patterns_of(kernel):
    if kernel.dense:
        yield "dense"
    for p in BLOCK_PATTERNS:
        if int(p.split("x")[0]) in kernel.block_rows:
            yield p


def cases():
    for kernel in KERNELS:
        for i, pattern in enumerate(patterns_of(kernel)):
            # Rotate shapes, sparsities and epilogues so each kernel sees all of them.
            for j, shape in enumerate(SHAPES):
                if kernel.name == "spmm_f32_ref" and shape[0] * shape[1] * shape[2] > 200_000:
                    continue
                sparsity = SPARSITIES[(i + j) % len(SPARSITIES)] if pattern != "dense" else None
                epilogue = EPILOGUES[(i * 3 + j) % len(EPILOGUES)]
                yield pytest.param(kernel.name, pattern, shape, sparsity, epilogue,
                                   id=f"{kernel.name}-{pattern}-{'x'.join(map(str, shape))}-{sparsity}")


@pytest.mark.parametrize("kernel,pattern,shape,sparsity,epilogue", list(cases()))
def test_kernel_matches_ground_truth(kernel, pattern, shape, sparsity, epilogue):
    m, n, k = shape
    rng = np.random.default_rng(zlib.crc32(f"{kernel}-{pattern}-{shape}".encode()))
    w = rng.standard_normal((n, k)).astype(np.float32)
    if pattern != "dense":
        w = sc.prune_weight(w, pattern, sparsity)
    with_bias, activation, with_residual = epilogue
    bias = rng.standard_normal(n).astype(np.float32) if with_bias else None
    residual = rng.standard_normal((m, n)).astype(np.float32) if with_residual else None
    x = rng.standard_normal((m, k)).astype(np.float32)

    lin = sc.SparseLinear(w, bias, pattern=pattern, activation=activation, kernel=kernel)
    assert lin.kernel == kernel
    y = lin(x, residual=residual)
    assert_close_fp32(y, x, w, bias, activation, residual)

    reference = sc.SparseLinear(w, bias, pattern=pattern, activation=activation, kernel="spmm_f32_ref")
    np.testing.assert_allclose(y, reference(x, residual=residual), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel", [k.name for k in KERNELS])
def test_all_zero_weight_gives_bias_through_epilogue(kernel):
    k_obj = next(k for k in KERNELS if k.name == kernel)
    pattern = next(patterns_of(k_obj))
    n, k = 37, 45
    bias = np.linspace(-3, 3, n).astype(np.float32)
    lin = sc.SparseLinear(np.zeros((n, k), np.float32), bias, pattern=pattern, activation="relu", kernel=kernel)
    y = lin(np.ones((19, k), np.float32))
    np.testing.assert_array_equal(y, np.broadcast_to(np.maximum(bias, 0), (19, n)))


def test_empty_block_rows_and_rows_past_a_dense_region(rng):
    # Whole output rows empty, others dense: row_ptr with repeated entries.
    w = rng.standard_normal((64, 40)).astype(np.float32)
    w[16:48] = 0.0
    x = rng.standard_normal((33, 40)).astype(np.float32)
    for kernel in KERNELS:
        for pattern in itertools.islice(patterns_of(kernel), 0, None, 7):
            y = sc.SparseLinear(w, pattern=pattern, kernel=kernel.name)(x)
            assert_close_fp32(y, x, w)
            assert not y[:, 16:48].any()


def test_dispatch_picks_the_best_usable_kernel(cpu):
    active = isa_rank(cpu["isa"])
    for pattern in ["16x1", "8x1", "4x1", "1x4", "1x1", "2x8", "dense"]:
        lin = sc.SparseLinear(np.eye(32, dtype=np.float32), pattern=pattern)
        chosen = kernel_isa(lin.kernel)
        assert isa_rank(chosen) <= active
        candidates = [k for k in KERNELS
                      if (k.dense if pattern == "dense" else int(pattern.split("x")[0]) in k.block_rows)]
        assert chosen == max((k.isa for k in candidates), key=isa_rank), (pattern, lin.kernel)


def test_threads_do_not_change_results(rng):
    w = sc.prune_weight(rng.standard_normal((300, 200)).astype(np.float32), "4x1", 0.8)
    x = rng.standard_normal((70, 200)).astype(np.float32)
    old = sc.get_num_threads()
    try:
        for pattern in ["16x1", "4x1", "dense"]:
            lin = sc.SparseLinear(w, pattern=pattern, activation="gelu")
            sc.set_num_threads(1)
            one = lin(x)
            sc.set_num_threads(2)
            two = lin(x)
            np.testing.assert_array_equal(one, two)
    finally:
        sc.set_num_threads(old)


def test_nan_and_inf_propagate(rng):
    w = rng.standard_normal((32, 16)).astype(np.float32)
    x = rng.standard_normal((20, 16)).astype(np.float32)
    x[3, 5] = np.nan
    x[7, 2] = np.inf
    for kernel in KERNELS:
        pattern = next(patterns_of(kernel))
        y = sc.SparseLinear(w, pattern=pattern, activation="relu", kernel=kernel.name)(x)
        assert np.isnan(y[3]).all(), kernel.name
        assert not np.isnan(np.delete(y, [3, 7], axis=0)).any(), kernel.name


@pytest.mark.parametrize("pattern", ["1x1", "2x1", "4x1", "8x1", "16x1", "1x4"])
@pytest.mark.parametrize("m", [1, 33, 130])
def test_rows_4kib_apart_are_staged_with_the_same_results(pattern, m):
    """With 1024 outputs per token, the token-tile kernels' results leave through
    staged rows (kernels/output_rows.h), bias and activation applied at the
    write-out; with 16 more channels they are stored straight. The shared
    channels must match bit for bit, at 1 and 2 threads."""
    rng = np.random.default_rng(zlib.crc32(repr((pattern, m)).encode()))
    n, k = 1024, 40
    w = sc.prune_weight(rng.standard_normal((n + UNSTAGED_EXTRA_CHANNELS, k)).astype(np.float32), pattern, 0.5)
    bias, x, residual = staging_inputs(rng, m, n, k)
    for kernel in KERNELS:
        if kernel.dense:
            continue
        try:
            staged = sc.SparseLinear(w[:n], bias[:n], pattern=pattern, activation="gelu", kernel=kernel.name)
        except ValueError:  # a kernel of another block height
            continue
        straight = sc.SparseLinear(w, bias, pattern=pattern, activation="gelu", kernel=kernel.name)
        before = sc.get_num_threads()
        try:
            for threads in (1, 2):
                sc.set_num_threads(threads)
                np.testing.assert_array_equal(staged(x, residual=residual[:, :n]),
                                              straight(x, residual=residual)[:, :n],
                                              err_msg=f"{kernel.name} threads={threads}")
        finally:
            sc.set_num_threads(before)
