"""Every registered int8 kernel: int32 accumulators exact against numpy, the
float path within the quantization error bound. Reruns under each forced ISA level."""

import zlib

import numpy as np
import pytest

import sparsecpu as sc
from sparsecpu import _core

from conftest import isa_rank, kernel_isa
from reference import UNSTAGED_EXTRA_CHANNELS, bf16_bits, linear_reference, staging_inputs

pytestmark = pytest.mark.kernels

KERNELS = [k for k in _core.spmm_s8_kernels() if k.usable and not k.semi24]  # 2:4: test_kernels_semi24.py
BLOCKS = [(1, 1), (4, 1), (1, 4), (2, 1), (8, 1), (16, 1), (4, 4), (2, 8), (16, 4)]
# K not a multiple of 4, M = 1, primes, tails of every tile (64 tokens, 32 channels).
# M = 12, 16, 17, 32, 33, 48, 49, 96: a last tile whose second half is skipped or not (block kernels:
# it starts at token 16 of a 32-token tile on AVX2 and AVX-VNNI, at 32 of 64 on AVX-512); calls of
# one vector of tokens in token order (block kernels: up to 8 tokens on AVX2 and AVX-VNNI, M = 8
# and 9 either side, up to 16 on AVX-512).
SHAPES = [(1, 1, 1), (1, 17, 3), (3, 5, 2), (65, 33, 31), (2, 1, 64), (97, 50, 129), (130, 70, 67), (64, 32, 256),
          (12, 20, 40), (16, 9, 8), (17, 24, 12), (32, 24, 20), (33, 12, 6), (48, 16, 20), (49, 33, 7), (96, 8, 13),
          (8, 20, 33), (9, 7, 50)]


def seeded(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def random_int8(rng, n, k, density):
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    w[rng.random((n, k)) >= density] = 0
    return w


def exact(x, w):
    return x.astype(np.int64) @ w.astype(np.int64).T


def cases():
    for kernel in KERNELS:
        blocks = [None] if kernel.dense else BLOCKS
        for i, block in enumerate(blocks):
            for j, shape in enumerate(SHAPES):
                density = [1.0, 0.5, 0.1, 0.01, 0.0][(i + j) % 5]
                yield pytest.param(kernel.name, block, shape, density,
                                   id=f"{kernel.name}-{block}-{'x'.join(map(str, shape))}-{density}")


@pytest.mark.parametrize("kernel,block,shape,density", list(cases()))
def test_int32_accumulators_are_exact(kernel, block, shape, density):
    m, n, k = shape
    rng = seeded(kernel, block, shape)
    w = random_int8(rng, n, k, density)
    # Block patterns: prune to whole blocks so empty block rows occur too.
    if block and density < 1.0:
        w = np.where(sc.prune_weight(w.astype(np.float32), f"{block[0]}x{block[1]}", 1 - density) != 0, w, 0)
        w = w.astype(np.int8)
    x = rng.integers(0, 256, (m, k)).astype(np.uint8)
    rows, cols = block or (1, 1)
    lin = _core.LinearS8.from_int8(w, "dense" if block is None else "blocks", rows, cols, kernel)
    np.testing.assert_array_equal(lin.forward_s32(x), exact(x, w))


@pytest.mark.parametrize("kernel", [k.name for k in KERNELS])
@pytest.mark.parametrize("weight", [127, -128])
def test_saturation_edges(kernel, weight):
    dense = "_dense_" in kernel
    for k in (4, 1023, 4096):
        w = np.full((20, k), weight, np.int8)
        x = np.full((70, k), 255, np.uint8)
        lin = _core.LinearS8.from_int8(w, "dense" if dense else "blocks", 4, 1, kernel)
        np.testing.assert_array_equal(lin.forward_s32(x), exact(x, w))
    # Alternating extremes: the pair sums a 16-bit path would saturate.
    w = np.tile(np.array([-128, -128, 127, -128], np.int8), (8, 64))
    x = np.full((33, 256), 255, np.uint8)
    lin = _core.LinearS8.from_int8(w, "dense" if dense else "blocks", 1, 4, kernel)
    np.testing.assert_array_equal(lin.forward_s32(x), exact(x, w))


def quantization_bound(x, w, activation):
    """Worst-case error of per-channel int8 weights and per-token u8 activations
    (round-to-nearest: half a step each), plus fp32 rounding; GELU and ReLU are
    at most 1.13-Lipschitz."""
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    sw = np.abs(w64).max(axis=1) / 127
    lo, hi = np.minimum(x64.min(axis=1), 0), np.maximum(x64.max(axis=1), 0)
    sx = (hi - lo) / 255
    k = x.shape[1]
    bound = 0.5 * (np.abs(x64).sum(1)[:, None] * sw[None, :] + sx[:, None] * np.abs(w64).sum(1)[None, :]) \
        + 0.25 * k * sx[:, None] * sw[None, :]
    bound += 1e-5 * (np.abs(x64) @ np.abs(w64).T + 1.0)
    return bound * (1.13 if activation else 1.0)


@pytest.mark.parametrize("pattern", ["4x1", "1x4", "16x1", "2x2", "dense"])
@pytest.mark.parametrize("activation", [None, "gelu", "relu"])
def test_float_path_within_quantization_bound(pattern, activation):
    rng = seeded(pattern, activation)
    m, n, k = 77, 70, 130
    w = rng.standard_normal((n, k)).astype(np.float32)
    if pattern != "dense":
        w = sc.prune_weight(w, pattern, 0.6)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.1, 5, (m, 1))).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    residual = rng.standard_normal((m, n)).astype(np.float32)
    exact_y, _ = linear_reference(x, w, bias, activation, residual)
    bound = quantization_bound(x, w, activation)
    for kernel in KERNELS:
        if kernel.dense != (pattern == "dense"):
            continue
        lin = sc.SparseLinear(w, bias, pattern=pattern, dtype="int8", activation=activation, kernel=kernel.name)
        y = lin(x, residual=residual)
        err = np.abs(y - exact_y)
        assert np.all(err <= bound), (kernel.name, float((err - bound).max()))
        # int8 output: the float result requantized, exactly.
        q = lin(x, residual=residual, out_scale=0.05)
        expected = np.clip(np.rint(y.astype(np.float32) * np.float32(1 / 0.05)), -128, 127).astype(np.int8)
        np.testing.assert_array_equal(q, expected)


def test_kernels_agree_on_float_outputs():
    rng = seeded("agree")
    w = sc.prune_weight(rng.standard_normal((96, 200)).astype(np.float32), "4x1", 0.8)
    x = rng.standard_normal((150, 200)).astype(np.float32)
    residual = rng.standard_normal((150, 96)).astype(np.float32)
    outs = {k.name: sc.SparseLinear(w, pattern="4x1", dtype="int8", activation="gelu", kernel=k.name)(x, residual)
            for k in KERNELS if not k.dense}
    reference = outs["spmm_s8_quads_ref"]
    for name, y in outs.items():  # same integers; epilogue float rounding may differ by an ulp or two
        np.testing.assert_allclose(y, reference, rtol=1e-5, atol=1e-5, err_msg=name)


def test_nan_token_gives_nan_row_only():
    rng = seeded("nan")
    w = rng.standard_normal((40, 48)).astype(np.float32)
    x = rng.standard_normal((70, 48)).astype(np.float32)
    x[5, 7] = np.nan
    x[9, 0] = np.inf
    for kernel in KERNELS:
        pattern = "dense" if kernel.dense else "4x1"
        y = sc.SparseLinear(w, pattern=pattern, dtype="int8", kernel=kernel.name)(x)
        assert np.isnan(y[[5, 9]]).all(), kernel.name
        assert not np.isnan(np.delete(y, [5, 9], axis=0)).any(), kernel.name


def test_dispatch_picks_the_best_usable_int8_kernel(cpu):
    for pattern in ["4x1", "dense"]:
        lin = sc.SparseLinear(np.eye(32, dtype=np.float32), pattern=pattern, dtype="int8")
        candidates = [k for k in KERNELS if k.dense == (pattern == "dense")]
        assert kernel_isa(lin.kernel) == max((k.isa for k in candidates), key=isa_rank)
        assert isa_rank(kernel_isa(lin.kernel)) <= isa_rank(cpu["isa"])


def test_threads_do_not_change_int8_results():
    rng = seeded("threads")
    # Blocks taller than a vector but not two (12 rows on 8-lane kernels): a block row's second
    # piece of channels once ran past the block into the next one's, a race between threads.
    w12 = rng.integers(-128, 128, (24, 40)).astype(np.int8)
    x12 = rng.integers(0, 256, (32, 40)).astype(np.uint8)
    w = sc.prune_weight(rng.standard_normal((300, 260)).astype(np.float32), "4x1", 0.8)
    x = rng.standard_normal((200, 260)).astype(np.float32)
    old = sc.get_num_threads()
    try:
        sc.set_num_threads(2)
        for kernel in KERNELS:
            if not kernel.dense:
                lin = _core.LinearS8.from_int8(w12, "blocks", 12, 1, kernel.name)
                for _ in range(20):
                    np.testing.assert_array_equal(lin.forward_s32(x12), exact(x12, w12))
        for pattern in ["4x1", "dense"]:
            lin = sc.SparseLinear(w, pattern=pattern, dtype="int8")
            sc.set_num_threads(1)
            one = lin(x)
            sc.set_num_threads(2)
            np.testing.assert_array_equal(one, lin(x))
    finally:
        sc.set_num_threads(old)


def test_int8_argument_errors():
    w = np.ones((8, 8), np.float32)
    with pytest.raises(ValueError, match="out_scale"):
        sc.SparseLinear(w, pattern="4x1")(np.ones((2, 8)), out_scale=0.1)
    lin = sc.SparseLinear(w, pattern="4x1", dtype="int8")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="out_scale"):
            lin(np.ones((2, 8)), out_scale=bad)
    w[3, 2] = np.inf
    with pytest.raises(ValueError, match="row 3 column 2"):
        sc.SparseLinear(w, pattern="4x1", dtype="int8")


def test_concurrent_int8_calls_match_serial():
    from concurrent.futures import ThreadPoolExecutor

    rng = seeded("concurrent")
    w = sc.prune_weight(rng.standard_normal((96, 130)).astype(np.float32), "4x1", 0.7)
    inputs = [rng.standard_normal((int(rng.integers(1, 150)), 130)).astype(np.float32) for _ in range(48)]
    for pattern in ["4x1", "dense"]:
        lin = sc.SparseLinear(w, pattern=pattern, dtype="int8", activation="gelu")
        serial = [lin(x) for x in inputs]
        with ThreadPoolExecutor(max_workers=6) as pool:
            parallel = list(pool.map(lin, inputs))
        for s, p in zip(serial, parallel):
            np.testing.assert_array_equal(s, p)


@pytest.mark.parametrize("layout,pattern", [("dense", "dense"), ("blocks", "4x1"), ("2:4", "2:4")])
def test_quantized_weights_give_the_float_constructed_layer(layout, pattern):
    """A compiled int8 model keeps QuantizedRows (int8 + scales): the layer built from them must be
    the one built from the float weights, bit for bit (Python and C++ quantize alike)."""
    from sparsecpu.ir import QuantizedRows

    rng = seeded("quantized", layout)
    w = rng.standard_normal((70, 67)).astype(np.float32)
    w[5] = 0.0
    w[7, 3] = 1e-30  # quantizes to 0 next to normal weights
    if pattern != "dense":
        w = sc.prune_weight(w, pattern, None if pattern == "2:4" else 0.5)
    bias = rng.standard_normal(70).astype(np.float32)
    x = rng.standard_normal((33, 67)).astype(np.float32)
    q = QuantizedRows.quantize(w)
    rows, cols = (4, 1) if layout == "blocks" else (1, 1)
    from_floats = _core.LinearS8(w, bias, layout, rows, cols, "gelu")
    from_ints = _core.LinearS8.from_quantized(q.values, q.scale, bias, layout, rows, cols, "gelu")
    np.testing.assert_array_equal(from_ints.forward(x), from_floats.forward(x))
    assert from_ints.kernel == from_floats.kernel


def test_quantized_weights_refuse_bad_scales():
    values = np.ones((3, 8), np.int8)
    for scale, words in [(np.ones(2, np.float32), r"scale must have shape \(3,\)"),
                         (np.array([1, 0, 1], np.float32), r"scale\[1\] must be a positive finite number"),
                         (np.array([1, 1, np.nan], np.float32), r"scale\[2\]")]:
        with pytest.raises(ValueError, match=words):
            _core.LinearS8.from_quantized(values, scale, None, "dense", 1, 1, "none")


@pytest.mark.parametrize("block", [(4, 1), (1, 4), (16, 1), (8, 1), (2, 2), (3, 1), (7, 1), (12, 1), (15, 1)])
@pytest.mark.parametrize("m", [1, 33, 130])
def test_rows_4kib_apart_are_staged_with_the_same_results(block, m):
    """With 1024 float or 4096 int8 outputs per token, a tile's results leave
    through staged rows (output_rows.h); with 16 more channels they are stored
    straight. The shared channels must match bit for bit: activation, residual,
    int8 output, a short last token tile (and a call too short to stage), 1 and
    2 threads, and block heights whose pieces start at odd columns (3: 15
    channels at 0, 15, 30, 45), end in a short unit and block row (3, 7, 12, 15
    do not divide 1024), or are taller than a vector (AVX2: 12, 15, 16)."""
    rows, cols = block
    rng = seeded(block, m)
    for n, out_scale in ((1024, None), (4096, 0.05)):
        k = 40
        w = rng.standard_normal((n + UNSTAGED_EXTRA_CHANNELS, k)).astype(np.float32)
        w[rng.random(w.shape) < 0.5] = 0.0
        bias, x, residual = staging_inputs(rng, m, n, k)
        for kernel in KERNELS:
            if kernel.dense:
                continue
            staged = _core.LinearS8(w[:n], bias[:n], "blocks", rows, cols, "gelu", kernel.name)
            straight = _core.LinearS8(w, bias, "blocks", rows, cols, "gelu", kernel.name)
            for threads in (1, 2):
                if out_scale is None:
                    got = staged.forward(x, residual[:, :n].copy(), threads)
                    expected = straight.forward(x, residual, threads)[:, :n]
                else:
                    got = staged.forward_s8(x, residual[:, :n].copy(), out_scale, threads)
                    expected = straight.forward_s8(x, residual, out_scale, threads)[:, :n]
                np.testing.assert_array_equal(got, expected, err_msg=f"{kernel.name} n={n} threads={threads}")


@pytest.mark.parametrize("m", [1, 5, 20, 40])
def test_short_calls_ignore_what_earlier_calls_left_in_the_panels(m):
    """A short call's last panel keeps the bytes of an earlier, longer call where
    it has only padding tokens (they are neither quantized nor transposed); the
    sums of those lanes must never reach an output: int32 exact, float and int8
    outputs the same after a call of extreme activations as before it
    (n = 1024: float rows staged from 32 tokens on)."""
    rng = seeded("short calls", m)
    k = 70
    for kernel in KERNELS:
        for n in (40, 1024):
            w = random_int8(rng, n, k, 0.3)
            x = rng.integers(0, 256, (m, k)).astype(np.uint8)
            lin = _core.LinearS8.from_int8(w, "dense" if kernel.dense else "blocks", 4, 1, kernel.name)
            wf = rng.standard_normal((n, k)).astype(np.float32)
            flin = _core.LinearS8(wf, None, "dense" if kernel.dense else "blocks", 4, 1, "gelu", kernel.name)
            xf = rng.standard_normal((m, k)).astype(np.float32)
            before = flin.forward(xf, None, 1), flin.forward_s8(xf, None, 0.05, 1)
            long_u8 = np.full((130, k), 255, np.uint8)
            long_f32 = np.full((130, k), 3e4, np.float32)
            long_f32[:, ::2] = -3e4
            for tokens in (130, 16):  # 16: a call of one vector of tokens on AVX-512 (its own panel order)
                lin.forward_s32(long_u8[:tokens])
                flin.forward(long_f32[:tokens], None, 1)
            np.testing.assert_array_equal(lin.forward_s32(x), exact(x, w), err_msg=f"{kernel.name} n={n}")
            after = flin.forward(xf, None, 1), flin.forward_s8(xf, None, 0.05, 1)
            for b, a in zip(before, after):
                np.testing.assert_array_equal(a, b, err_msg=f"{kernel.name} n={n}")


@pytest.mark.parametrize("k", [5, 85, 200])
def test_every_kernel_quantizes_activations_as_the_reference(k):
    """W = 127 I, no bias: each output is (q - zero point) x token scale, one
    product, so every kernel's outputs equal the reference kernel's bit for bit
    exactly when their quantized activations do (vector packs of 64, of 16,
    the scalar tail; row extremes land on 0 and 255). Block and dense kernels."""
    rng = seeded("quantization", k)
    x = (rng.standard_normal((70, k)) * rng.uniform(0.01, 100, (70, 1))).astype(np.float32)
    x[3] = np.linspace(-1, 1, k, dtype=np.float32)
    x[4] = 0.0
    x[5, ::3] = 1e30
    w = np.eye(k, dtype=np.float32)
    for dense in (False, True):
        pattern = "dense" if dense else "4x1"
        outs = {kernel.name: sc.SparseLinear(w, pattern=pattern, dtype="int8", kernel=kernel.name)(x)
                for kernel in KERNELS if kernel.dense == dense}
        reference = outs["spmm_s8_dense_ref" if dense else "spmm_s8_quads_ref"]
        for name, y in outs.items():
            np.testing.assert_array_equal(y, reference, err_msg=name)


# Results whose bf16 rounding matters: ties to even both ways, the largest float (rounds to inf),
# infinities, NaN, denormals (to zeros of their sign), signed zeros, ordinary values.
BF16_SPECIALS = np.array([0x3F808000, 0x3F818000, 0x3F800001, 0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000,
                          0x7F800001, 0x00400000, 0x80000001, 0x00000000, 0x80000000, 0x00800000, 0x3EAAAAAB],
                         np.uint32).view(np.float32)


@pytest.mark.parametrize("m", [1, 33, 70])
@pytest.mark.parametrize("n", [37, 1024])  # 1024: staged rows (output_rows.h) from 32 tokens on
@pytest.mark.parametrize("block_rows", [4, 3])  # 3: staged units of 63 channels, short pieces
def test_bf16_outputs_are_the_float_outputs_rounded(m, n, block_rows):
    """forward_bf16 (what an int8 QKV projection writes for the bf16 attention) gives the float
    results rounded as vcvtneps2bf16 rounds them, bit for bit, on every kernel, activation and
    thread count: with zero activations the result is bias + residual, so the special values
    reach the conversion."""
    rng = seeded("bf16 out", m, n)
    k = 24
    w = rng.standard_normal((n, k)).astype(np.float32)
    w.reshape(n, -1, 4)[:, :, 2:] = 0.0  # 2:4, and 4x1 / dense take it as it is
    bias = rng.standard_normal(n).astype(np.float32)
    bias[:len(BF16_SPECIALS)] = BF16_SPECIALS
    residual = rng.standard_normal((m, n)).astype(np.float32)
    residual[:, :len(BF16_SPECIALS)] = 0.0
    residual[-1, -len(BF16_SPECIALS):] = BF16_SPECIALS
    zeros = np.zeros((m, k), np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    for kernel in (kk for kk in _core.spmm_s8_kernels() if kk.usable):
        layout = "dense" if kernel.dense else "2:4" if kernel.semi24 else "blocks"
        if layout != "blocks" and block_rows != 4:
            continue
        for activation in ("none", "gelu", "relu"):
            lin = _core.LinearS8(w, bias, layout, block_rows, 1, activation, kernel.name)
            for inputs, res in ((zeros, None), (zeros, residual), (x, residual)):
                for threads in (1, 2):
                    expected = bf16_bits(lin.forward(inputs, res, threads))
                    got = lin.forward_bf16(inputs, res, threads)
                    assert got.dtype == np.uint16
                    np.testing.assert_array_equal(got, expected, err_msg=f"{kernel.name} {activation} {threads}")
