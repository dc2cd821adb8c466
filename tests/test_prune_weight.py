import numpy as np
import pytest

import sparsecpu as sc


def block_view(w, r, c):
    n, k = w.shape
    padded = np.zeros((-(-n // r) * r, -(-k // c) * c), w.dtype)
    padded[:n, :k] = w
    return padded.reshape(padded.shape[0] // r, r, padded.shape[1] // c, c)


@pytest.mark.parametrize("pattern", ["4x1", "1x4", "16x1", "8x2", "1x1", "unstructured"])
@pytest.mark.parametrize("shape", [(64, 48), (67, 45), (3, 5)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_exact_share_of_smallest_blocks_zeroed(pattern, shape, sparsity, rng):
    w = rng.standard_normal(shape).astype(np.float32)
    pruned = sc.prune_weight(w, pattern, sparsity)
    assert pruned.dtype == w.dtype and pruned.shape == w.shape
    r, c = (1, 1) if pattern == "unstructured" else map(int, pattern.split("x"))
    blocks = block_view(pruned, r, c)
    kept = np.abs(blocks).sum(axis=(1, 3)) > 0
    assert kept.size - kept.sum() == round(sparsity * kept.size)
    # Kept entries are untouched; every zeroed block's norm <= every kept block's norm.
    assert np.array_equal(pruned[pruned != 0], w[pruned != 0])
    norms = np.sqrt((block_view(w, r, c).astype(np.float64) ** 2).sum(axis=(1, 3)))
    if kept.any() and (~kept).any():
        assert norms[~kept].max() <= norms[kept].min()


def test_input_is_not_modified(rng):
    w = rng.standard_normal((32, 32))
    before = w.copy()
    sc.prune_weight(w, "4x1", 0.9)
    assert np.array_equal(w, before)


def test_score_drives_the_choice(rng):
    w = np.ones((8, 8), np.float32)
    score = np.zeros((8, 8))
    score[:, :2] = 1.0
    pruned = sc.prune_weight(w, "1x1", 0.75, score=score)
    assert np.count_nonzero(pruned) == 16 and pruned[:, :2].all()


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (2, 8)])
def test_n_m_keeps_the_largest_in_each_group(n, m, rng):
    w = rng.standard_normal((6, 21)).astype(np.float32)  # 21: a partial last group
    pruned = sc.prune_weight(w, f"{n}:{m}")
    for row_w, row_p in zip(w, pruned):
        for g in range(0, 21, m):
            group_w, group_p = np.abs(row_w[g:g + m]), row_p[g:g + m]
            assert np.count_nonzero(group_p) == min(n, group_w.size)
            kept = np.sort(group_w)[::-1][: min(n, group_w.size)]
            assert np.allclose(np.sort(np.abs(group_p[group_p != 0]))[::-1], kept)
    assert sc.prune_weight(w, "2:4", 0.5).shape == w.shape


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(pattern="4x1"), ValueError, ["sparsity"]),
    (dict(pattern="4x1", sparsity=1.5), ValueError, ["1.5"]),
    (dict(pattern="4x1", sparsity=-0.1), ValueError, ["-0.1"]),
    (dict(pattern="2:4", sparsity=0.8), ValueError, ["2:4", "0.5", "0.8"]),
    (dict(pattern="5x1", sparsity=0.5), ValueError, ["5x1"]),
    (dict(pattern="4x1", sparsity=0.5, score=np.ones((3, 3))), ValueError, ["score", "(3, 3)"]),
])
def test_bad_arguments(kwargs, error, words, rng):
    with pytest.raises(error) as info:
        sc.prune_weight(rng.standard_normal((8, 8)), **kwargs)
    for word in words:
        assert word in str(info.value)


def test_bad_weight():
    with pytest.raises(ValueError, match=r"2-D.*\(4,\)"):
        sc.prune_weight(np.ones(4), "4x1", 0.5)
    with pytest.raises(TypeError, match="int64"):
        sc.prune_weight(np.ones((4, 4), np.int64), "4x1", 0.5)
