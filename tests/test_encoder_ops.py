"""Attention and layer-norm kernels: every registered kernel against float64 references."""

import numpy as np
import pytest

from sparsecpu import _core

from conftest import kernel_isa
from reference import bf16 as bf16_float32, bf16_bits

pytestmark = pytest.mark.kernels

LOWEST = np.finfo(np.float32).min


def bf16(x):
    """x rounded to bf16 (nearest even), as float64."""
    return bf16_float32(x).astype(np.float64)


def attention_reference(qkv, batch, heads, head_dim, mask, scale, all_masked="average", kernel=""):
    """What BERT-family exports compute: scores + (1 - mask) x lowest float, softmax, weighted values;
    a sequence with every key masked then gets all_masked: "average" (what the lowest float gives),
    "all_keys" (what -10000 gives) or "zeros" (what -inf and a NaN guard give). For a kernel with
    bf16 products (..._bf16), what it computes: Q, K, V and the softmax numerators rounded to bf16,
    the sums and the normalization exact."""
    products_bf16 = kernel.endswith("_bf16")
    tokens = qkv.shape[0]
    seq, width = tokens // batch, heads * head_dim
    x = (bf16(qkv) if products_bf16 else qkv.astype(np.float64)).reshape(batch, seq, 3, heads, head_dim)
    q, k, v = (x[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    scores = q @ k.transpose(0, 1, 3, 2) * scale
    magnitude = np.abs(q) @ np.abs(k).transpose(0, 1, 3, 2) * scale
    if mask is not None:
        fill = np.where((mask == 0).all(1), {"average": LOWEST, "all_keys": 0.0, "zeros": 0.0}[all_masked], LOWEST)
        scores = scores + np.where(mask[:, None, None, :] != 0, 0.0, fill[:, None, None, None])
    scores -= scores.max(-1, keepdims=True)
    numerators = np.exp(scores)
    p = (bf16(numerators) if products_bf16 else numerators) / numerators.sum(-1, keepdims=True)
    if mask is not None and all_masked == "zeros":
        p[(mask == 0).all(1)] = 0.0
    out = (p @ v).transpose(0, 2, 1, 3).reshape(tokens, width)
    # fp32 scores err by ~1e-6 x their magnitude sum; that error scales the weights relatively.
    bound = 1e-5 * (1.0 + magnitude.max()) * np.abs(v).max() + 1e-30
    if products_bf16:
        # Those errors may move a numerator across a bf16 rounding boundary: one step, 2^-8 of it.
        bound += 2.0 ** -8 * np.abs(v).max()
    return out, bound


def usable(kernels):
    return [name for name, _, ok in kernels if ok]


ATTENTION_SHAPES = [  # batch, seq, heads, head_dim
    (1, 1, 1, 1), (2, 7, 3, 5), (1, 128, 2, 64), (3, 33, 2, 32), (2, 70, 4, 24), (1, 129, 1, 80), (2, 17, 2, 16),
]


@pytest.mark.parametrize("kernel", usable(_core.attention_kernels()))
@pytest.mark.parametrize("batch,seq,heads,head_dim", ATTENTION_SHAPES)
def test_attention_matches_reference(kernel, batch, seq, heads, head_dim, rng):
    qkv = (rng.standard_normal((batch * seq, 3 * heads * head_dim)) * 2).astype(np.float32)
    mask = (rng.random((batch, seq)) > 0.3).astype(np.int32)
    mask[:, 0] = 1
    if batch > 1:
        mask[-1, :] = 0  # every key masked: equal weights over all keys, as in the exports
    scale = head_dim ** -0.5
    expected, bound = attention_reference(qkv, batch, heads, head_dim, mask, scale, kernel=kernel)
    actual = _core.attention(qkv, batch, heads, head_dim, mask, scale, kernel)
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= bound


@pytest.mark.parametrize("batch,seq,heads,head_dim", ATTENTION_SHAPES)
def test_bf16_qkv_gives_the_results_of_the_float_qkv_it_rounds(batch, seq, heads, head_dim, rng):
    """A kernel that takes Q, K and V as bf16 (what an int8 QKV projection writes for it) computes
    exactly what it computes from the float values they round; the others refuse them."""
    qkv = (rng.standard_normal((batch * seq, 3 * heads * head_dim)) * 2).astype(np.float32)
    qkv[0, 0] = 1e-39  # a denormal: zero in bf16, as the instruction rounds it
    mask = (rng.random((batch, seq)) > 0.3).astype(np.int32)
    mask[:, 0] = 1
    for name, _, ok in _core.attention_kernels():
        if not ok:
            continue
        if name.endswith("_bf16"):
            np.testing.assert_array_equal(_core.attention(bf16_bits(qkv), batch, heads, head_dim, mask, 0.3, name),
                                          _core.attention(qkv, batch, heads, head_dim, mask, 0.3, name))
        else:
            with pytest.raises(ValueError, match=f"{name} takes float32 Q, K and V, not bf16"):
                _core.attention(bf16_bits(qkv), batch, heads, head_dim, mask, 0.3, name)


@pytest.mark.parametrize("kernel", usable(_core.attention_kernels()))
@pytest.mark.parametrize("all_masked", ["average", "all_keys", "zeros"])
def test_a_sequence_with_every_key_masked(kernel, all_masked, rng):
    batch, seq, heads, head_dim = 3, 21, 2, 24
    qkv = (rng.standard_normal((batch * seq, 3 * heads * head_dim)) * 2).astype(np.float32)
    mask = np.ones((batch, seq), np.int32)
    mask[1] = 0
    mask[2, 15:] = 0
    expected, bound = attention_reference(qkv, batch, heads, head_dim, mask, 0.2, all_masked, kernel)
    actual = _core.attention(qkv, batch, heads, head_dim, mask, 0.2, kernel, all_masked=all_masked)
    assert np.abs(actual - expected).max() <= bound
    if all_masked == "zeros":
        assert not actual[seq:2 * seq].any() and actual[2 * seq:].all()


def test_attention_all_masked_choices_are_named(rng):
    with pytest.raises(ValueError, match="all_masked 'none': expected 'average', 'all_keys' or 'zeros'"):
        _core.attention(np.zeros((4, 6), np.float32), 1, 1, 2, None, 1.0, all_masked="none")


@pytest.mark.parametrize("kernel", usable(_core.attention_kernels()))
def test_attention_without_mask_attends_to_all(kernel, rng):
    qkv = rng.standard_normal((2 * 9, 3 * 2 * 8)).astype(np.float32)
    ones = np.ones((2, 9), np.int32)
    a = _core.attention(qkv, 2, 2, 8, None, 0.3, kernel)
    b = _core.attention(qkv, 2, 2, 8, ones, 0.3, kernel)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kernel", usable(_core.attention_kernels()))
def test_attention_masked_keys_have_no_influence(kernel, rng):
    qkv = rng.standard_normal((12, 3 * 16)).astype(np.float32)
    mask = np.ones((1, 12), np.int32)
    mask[0, 5:] = 0
    changed = qkv.copy()
    changed[5:, 16:] = 1e6  # keys and values of masked tokens
    a = _core.attention(qkv, 1, 2, 8, mask, 0.5, kernel)
    b = _core.attention(changed, 1, 2, 8, mask, 0.5, kernel)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kernel", usable(_core.attention_kernels()))
def test_attention_nan_propagates(kernel, rng):
    qkv = rng.standard_normal((6, 3 * 8)).astype(np.float32)
    qkv[2, 8] = np.nan  # a key of token 2: every query's scores see it
    out = _core.attention(qkv, 1, 1, 8, None, 0.5, kernel)
    assert np.isnan(out).all()


def test_attention_threads_do_not_change_results(rng):
    qkv = rng.standard_normal((3 * 150, 3 * 4 * 32)).astype(np.float32)
    one = _core.attention(qkv, 3, 4, 32, None, 0.2, "", 1)
    two = _core.attention(qkv, 3, 4, 32, None, 0.2, "", 2)
    np.testing.assert_array_equal(one, two)


def test_attention_kernel_names_end_with_isa():
    for name, isa, _ in _core.attention_kernels() + _core.layernorm_kernels():
        assert kernel_isa(name) == isa


def test_attention_rejects_bad_shapes(rng):
    qkv = rng.standard_normal((10, 30)).astype(np.float32)
    with pytest.raises(ValueError, match="does not fit"):
        _core.attention(qkv, 3, 2, 5)  # 10 tokens are not 3 sequences
    with pytest.raises(ValueError, match="mask must have shape"):
        _core.attention(qkv, 2, 2, 5, np.ones((2, 4), np.int32))


@pytest.mark.parametrize("kernel", usable(_core.layernorm_kernels()))
@pytest.mark.parametrize("rows,width", [(1, 1), (3, 7), (37, 96), (5, 771), (17, 16), (2, 1024)])
def test_layernorm_matches_reference(kernel, rows, width, rng):
    x = (rng.standard_normal((rows, width)) * 3 + 5).astype(np.float32)
    gamma = rng.standard_normal(width).astype(np.float32)
    beta = rng.standard_normal(width).astype(np.float32)
    x64 = x.astype(np.float64)
    expected = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5) * gamma + beta
    actual = _core.layernorm(x, gamma, beta, 1e-5, kernel)
    # Relative to the normalized magnitude: mean and variance in fp32 over `width` values.
    bound = 2e-6 * np.sqrt(width) * (np.abs(gamma).max() * 4 + 1) + 1e-6
    assert np.abs(actual - expected).max() <= bound


@pytest.mark.parametrize("kernel", usable(_core.layernorm_kernels()))
def test_layernorm_constant_row_gives_beta(kernel):
    x = np.full((2, 40), 3.25, np.float32)
    gamma, beta = np.ones(40, np.float32), np.arange(40, dtype=np.float32)
    np.testing.assert_allclose(_core.layernorm(x, gamma, beta, 1e-12, kernel), np.tile(beta, (2, 1)), atol=1e-4)
