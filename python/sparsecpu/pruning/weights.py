"""Magnitude pruning of a single weight matrix (out_features, in_features)."""

from __future__ import annotations

import numpy as np

from ..patterns import parse_pattern


def _as_matrix(w, what: str) -> np.ndarray:
    arr = np.asarray(w)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (out_features, in_features), got shape {arr.shape}")
    if arr.dtype.kind != "f":
        raise TypeError(f"{what} must hold floats, got dtype {arr.dtype}")
    return arr


def block_scores(score: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """L2 norm of each (rows x cols) block; blocks past the edges are zero-padded."""
    n, k = score.shape
    bn, bk = -(-n // rows), -(-k // cols)
    padded = np.zeros((bn * rows, bk * cols), dtype=np.float64)
    padded[:n, :k] = score
    squares = np.square(padded).reshape(bn, rows, bk, cols)
    return np.sqrt(squares.sum(axis=(1, 3)))


def checked_sparsity(sparsity) -> float:
    """A sparsity as a float in [0, 1]; True, '0.5' and the like are refused, not converted."""
    if isinstance(sparsity, (bool, np.bool_)) or not isinstance(sparsity, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(sparsity) <= 1.0:
        raise ValueError(f"sparsity must be a number in [0, 1], got {sparsity!r}")
    return float(sparsity)


def prune_weight(weight, pattern="4x1", sparsity=None, score=None) -> np.ndarray:
    """Returns a pruned copy of ``weight`` (same dtype).

    Block patterns "RxC": the blocks with the smallest L2 norm (of ``score`` if
    given, else of the weight) are zeroed, exactly round(sparsity * blocks) of
    them. "N:M": in every group of M consecutive inputs of a row the N entries
    of largest magnitude are kept; sparsity must be omitted or equal 1 - N/M.
    """
    w = _as_matrix(weight, "weight")
    p = parse_pattern(pattern)
    importance = np.abs(w) if score is None else np.abs(_as_matrix(score, "score"))
    if importance.shape != w.shape:
        raise ValueError(f"score must have the weight's shape {w.shape}, got {importance.shape}")
    if p.kind == "dense":
        if sparsity not in (None, 0, 0.0):
            raise ValueError(f"pattern 'dense' takes no sparsity, got {sparsity}")
        return w.copy()
    if p.kind == "nm":
        return _prune_n_m(w, importance, p.n, p.m, sparsity)
    if sparsity is None:
        raise ValueError(f"pattern '{p.name}' needs a sparsity in [0, 1]")
    sparsity = checked_sparsity(sparsity)

    scores = block_scores(importance, p.rows, p.cols)
    n_zero = int(round(sparsity * scores.size))
    keep = np.ones(scores.size, dtype=bool)
    keep[np.argsort(scores, axis=None, kind="stable")[:n_zero]] = False
    mask = np.repeat(np.repeat(keep.reshape(scores.shape), p.rows, axis=0), p.cols, axis=1)
    return np.where(mask[: w.shape[0], : w.shape[1]], w, np.zeros((), dtype=w.dtype))


def _prune_n_m(w: np.ndarray, importance: np.ndarray, n: int, m: int, sparsity) -> np.ndarray:
    implied = 1.0 - n / m
    if sparsity is not None and abs(float(sparsity) - implied) > 1e-9:
        raise ValueError(f"pattern '{n}:{m}' fixes the sparsity at {implied:g}; got sparsity={sparsity}")
    rows, k = w.shape
    groups = -(-k // m)
    padded = np.full((rows, groups * m), -1.0)  # padding never outranks a real entry
    padded[:, :k] = importance
    order = np.argsort(-padded.reshape(rows, groups, m), axis=2, kind="stable")
    keep = np.zeros((rows, groups, m), dtype=bool)
    np.put_along_axis(keep, order[:, :, :n], True, axis=2)
    return np.where(keep.reshape(rows, groups * m)[:, :k], w, np.zeros((), dtype=w.dtype))
