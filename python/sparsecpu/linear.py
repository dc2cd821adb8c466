"""SparseLinear: one linear layer on packed weights with a fused epilogue."""

from __future__ import annotations

import numpy as np

from ._native import core
from .patterns import parse_pattern, weight_layout

_DTYPES = ("fp32", "int8", "bf16")
_ACTIVATIONS = (None, "gelu", "relu")


def _float_array(value, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise TypeError(f"{what} must hold floats (float16/32/64), got dtype {arr.dtype}")
    return arr


class SparseLinear:
    """y = activation(x @ W.T + bias) + residual, with W packed for our kernels.

    weight: (out_features, in_features) as in torch.nn.Linear.
    pattern: "RxC" block shape (every block holding a nonzero is kept, so any W
    is exact), "2:4" (at most 2 nonzeros in every group of 4 consecutive inputs
    of a row; a W that breaks it is refused: prune it first with
    ``prune_weight(W, "2:4")``) or "dense". dtype: "fp32", or "int8": weights quantized
    symmetrically per output channel, activations per token on the fly (u8
    with a zero point), int32 accumulation, dequantized in the fused epilogue;
    or "bf16": weights and activations rounded to bf16, products summed in
    fp32 (AVX512-BF16 kernels for dense and 2:4 weights where the CPU has them
    and they pay, see SPARSECPU_BF16_PRODUCTS; else our fp32 kernels on the
    rounded values).
    activation: None, "gelu" (erf form) or "relu". ``kernel`` forces a
    registered kernel by name (tests, benchmarks).
    """

    def __init__(self, weight, bias=None, pattern="4x1", dtype="fp32", activation=None, *, kernel=None):
        w = _float_array(weight, "weight")
        if w.ndim != 2:
            raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {w.shape}")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype '{dtype}': expected one of {_DTYPES}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation {activation!r}: expected None, 'gelu' or 'relu'")
        p = parse_pattern(pattern)
        layout = weight_layout(p)
        b = None
        if bias is not None:
            b = np.ascontiguousarray(_float_array(bias, "bias"), dtype=np.float32)
            if b.shape != (w.shape[0],):
                raise ValueError(f"bias must have shape ({w.shape[0]},), got {b.shape}")
        impl = {"fp32": core.LinearF32, "int8": core.LinearS8, "bf16": core.LinearBF16}[dtype]
        self._impl = impl(np.ascontiguousarray(w, dtype=np.float32), b, layout,
                          p.rows, p.cols, activation or "none", kernel or "")
        self.pattern = p.name
        self.dtype = dtype
        self.activation = activation
        self.in_features = int(w.shape[1])
        self.out_features = int(w.shape[0])

    @property
    def kernel(self) -> str:
        """Name of the kernel that runs; it ends with the ISA level."""
        return self._impl.kernel

    @property
    def density(self) -> float:
        """Share of the weight's entries that are nonzero."""
        total = self.in_features * self.out_features
        return self._impl.nonzeros / total if total else 0.0

    @property
    def packed_bytes(self) -> int:
        return int(self._impl.packed_bytes)

    def __call__(self, x, residual=None, out_scale=None) -> np.ndarray:
        """float32 (..., out_features); with dtype "int8" and ``out_scale``, the result
        requantized to int8 as round(y / out_scale), saturated, for chaining int8 layers."""
        if (residual is None and out_scale is None and type(x) is np.ndarray and x.dtype == np.float32
                and x.ndim == 2 and x.flags.c_contiguous):
            return self._impl.forward(x, None, 0)  # the common case, checked again in C++
        arr = _float_array(x, "input")
        if arr.ndim == 0 or arr.shape[-1] != self.in_features:
            raise ValueError(f"input must have shape (..., {self.in_features}), got {arr.shape}")
        lead = arr.shape[:-1]
        rows = int(np.prod(lead, dtype=np.int64))
        flat = np.ascontiguousarray(arr, dtype=np.float32).reshape(rows, self.in_features)
        res = None
        if residual is not None:
            r = _float_array(residual, "residual")
            if r.shape != lead + (self.out_features,):
                raise ValueError(f"residual must have shape {lead + (self.out_features,)}, got {r.shape}")
            res = np.ascontiguousarray(r, dtype=np.float32).reshape(rows, self.out_features)
        if out_scale is None:
            y = self._impl.forward(flat, res, 0)
        elif self.dtype != "int8":
            raise ValueError(f"out_scale requantizes int8 layers; this layer's dtype is '{self.dtype}'")
        else:
            y = self._impl.forward_s8(flat, res, float(out_scale), 0)
        return y.reshape(lead + (self.out_features,))

    def __repr__(self) -> str:
        return (f"SparseLinear(in_features={self.in_features}, out_features={self.out_features}, "
                f"pattern='{self.pattern}', dtype='{self.dtype}', density={self.density:.3f}, "
                f"kernel='{self.kernel}')")
