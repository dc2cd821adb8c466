"""Dense baselines measured in the same run as our kernels, when installed."""

from __future__ import annotations

import ctypes
import os
import tempfile
import warnings
from typing import Callable, Dict

import numpy as np

Peer = Callable[[], object]


def fp32_peers(x: np.ndarray, w: np.ndarray, threads: int) -> Dict[str, Peer]:
    w_t = np.ascontiguousarray(w.T)
    return {"numpy dense": lambda: np.matmul(x, w_t)}


def int8_peers(x: np.ndarray, w: np.ndarray, threads: int) -> Dict[str, Peer]:
    """onnxruntime MatMulInteger (u8 in, int32 out), onnxruntime's dynamic int8
    MatMul (float in and out, per-channel weights), torch's dynamic int8 Linear."""
    peers: Dict[str, Peer] = {}
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        onnxruntime = None
    if onnxruntime is not None:
        peers.update(_onnxruntime_peers(x, w, threads))
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(threads)
        linear = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
        # torch 2.13 deprecates quantize_dynamic (DeprecationWarning) and its quantized
        # tensors (UserWarning); it is still what torch users run for int8 on CPU.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            qlinear = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(linear), {torch.nn.Linear},
                                                             dtype=torch.qint8)
        xt = torch.from_numpy(x)

        def torch_int8():
            with torch.inference_mode():
                return qlinear(xt)
        peers["torch dynamic int8"] = torch_int8
    return peers


def _onnxruntime_peers(x, w, threads):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m, k = x.shape
    n = w.shape[0]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]

    scale = np.abs(w).max() / 127 or 1.0
    b = np.clip(np.rint(w.T / scale), -127, 127).astype(np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B", "a_zero"], ["Y"])], "matmul_integer",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        [numpy_helper.from_array(b, "B"), numpy_helper.from_array(np.array(128, np.uint8), "a_zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    integer = ort.InferenceSession(model.SerializeToString(), options, providers=providers)
    a = np.clip(np.rint(x / (np.abs(x).max() / 127 or 1.0)) + 128, 0, 255).astype(np.uint8)

    fp32 = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], "matmul",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(np.ascontiguousarray(w.T), "W")])
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its pre-processing advice
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        onnx.save(helper.make_model(fp32, opset_imports=[helper.make_opsetid("", 13)]), src)
        quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8)
        dynamic = ort.InferenceSession(dst, options, providers=providers)
    return {"onnxruntime MatMulInteger": lambda: integer.run(None, {"A": a}),
            "onnxruntime dynamic int8": lambda: dynamic.run(None, {"X": x})}


# ---- AMX: denied on request, so peers run at the VNNI level as on a CPU without it

_ARCH_REQ_XCOMP_PERM = 0x1023
_SYS_ARCH_PRCTL = 158


def deny_amx() -> bool:
    """Makes the kernel refuse this process's requests for AMX tile state
    (arch_prctl ARCH_REQ_XCOMP_PERM) with a seccomp filter, so libraries that
    would use AMX (onnxruntime's MLAS on Sapphire Rapids and later) fall back
    to AVX512-VNNI. sparsecpu itself does not use AMX. Irreversible for the
    process; call before any library asks. Returns whether requests now fail."""
    libc = ctypes.CDLL(None, use_errno=True)

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    ld_w_abs, jeq_k, ret_k = 0x20, 0x15, 0x06
    allow, eperm = 0x7FFF0000, 0x00050000 | 1
    audit_arch_x86_64 = 0xC000003E
    program = [
        SockFilter(ld_w_abs, 0, 0, 4),                          # seccomp_data.arch
        SockFilter(jeq_k, 0, 4, audit_arch_x86_64),
        SockFilter(ld_w_abs, 0, 0, 0),                          # seccomp_data.nr
        SockFilter(jeq_k, 0, 2, _SYS_ARCH_PRCTL),
        SockFilter(ld_w_abs, 0, 0, 16),                         # args[0], low half
        SockFilter(jeq_k, 1, 0, _ARCH_REQ_XCOMP_PERM),
        SockFilter(ret_k, 0, 0, allow),
        SockFilter(ret_k, 0, 0, eperm),
    ]
    filters = (SockFilter * len(program))(*program)
    fprog = SockFprog(len(program), filters)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        return False
    if libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(fprog), 0, 0) != 0:
        return False
    xtiledata = 18
    return libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, xtiledata) != 0
