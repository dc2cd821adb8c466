"""float64 ground truth and the fp32 error bound the kernel tests use."""

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])

# Each output is a sum of K products. fp32 accumulation in any order errs by at
# most K * 2^-24 of the magnitude sum (|x|·|w|ᵀ + |bias| + |residual|) and
# typically by sqrt(K) * 2^-24. We allow 1e-5 of the magnitude sum plus 1e-5
# of |value| (the vector GELU's polynomial erf errs by < 3e-7): ~1000x the
# typical rounding at K = 256, and far below any indexing mistake, which
# errs by a whole product.
FP32_RELATIVE_TOLERANCE = 1e-5


def linear_reference(x, w, bias=None, activation=None, residual=None):
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    y = x64 @ w64.T
    magnitude = np.abs(x64) @ np.abs(w64).T
    if bias is not None:
        y = y + bias
        magnitude = magnitude + np.abs(bias)
    if activation == "gelu":
        y = 0.5 * y * (1.0 + _erf(y / math.sqrt(2.0)))
    elif activation == "relu":
        y = np.maximum(y, 0.0)
    if residual is not None:
        y = y + residual
        magnitude = magnitude + np.abs(residual)
    return y, magnitude


def assert_close_fp32(actual, x, w, bias=None, activation=None, residual=None):
    expected, magnitude = linear_reference(x, w, bias, activation, residual)
    assert actual.dtype == np.float32
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    bound = FP32_RELATIVE_TOLERANCE * (magnitude + np.abs(expected)) + 1e-30
    err = np.abs(actual.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else None
    assert np.all(err <= bound), f"max excess at {worst}: got {actual[worst]}, expected {expected[worst]}"


# Channels added to a layer whose rows are 4 KiB apart so that its rows are not: the layer is
# then stored straight, the original staged (kernels/output_rows.h), and both must agree.
UNSTAGED_EXTRA_CHANNELS = 16


def staging_inputs(rng, m, n, k):
    """Bias, input and residual for the staged-rows tests: n + UNSTAGED_EXTRA_CHANNELS channels."""
    wide = n + UNSTAGED_EXTRA_CHANNELS
    bias = rng.standard_normal(wide).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    residual = rng.standard_normal((m, wide)).astype(np.float32)
    return bias, x, residual


def bf16_bits(a):
    """a's float32 values as bf16 bit patterns (uint16), as vcvtneps2bf16 converts them: round to
    nearest even, NaN kept quiet, a denormal to a zero of its sign."""
    bits = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF
    rounded = np.where(np.isnan(a), ((bits >> 16) | 0x40) & 0xFFFF, rounded)
    rounded = np.where((bits & 0x7F800000) == 0, (bits >> 16) & 0x8000, rounded)
    return rounded.astype(np.uint16)


def bf16(a):
    """a rounded to bf16 (bf16_bits), back as float32."""
    return (bf16_bits(a).astype(np.uint32) << 16).view(np.float32)
