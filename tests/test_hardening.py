"""Hardening: fuzzed inputs give a result or a Python exception (never a crash or a hang),
no leaks over many calls, NaN propagation, results independent of the thread count."""

import copy
import os

import numpy as np
import onnx
import pytest

import sparsecpu as sc

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_no_leak_over_10000_calls():
    m = sc.compile(os.path.join(DATA, "tiny_bert"), dtype="int8")
    lin = sc.SparseLinear(np.ones((16, 24), np.float32), pattern="4x1")
    ids = np.array([[5, 6, 7, 8]])
    x = np.ones((3, 24), np.float32)
    for _ in range(500):
        m(input_ids=ids)
        lin(x)
    before = rss_bytes()
    for _ in range(10_000):
        m(input_ids=ids)
        lin(x)
    assert rss_bytes() - before < 8 << 20


def fuzzed_onnx_models(count, seed):
    base = onnx.load(os.path.join(DATA, "tiny_bert.onnx"))
    rng = np.random.default_rng(seed)
    for trial in range(count):
        model = copy.deepcopy(base)
        nodes = model.graph.node
        kind = trial % 4
        if kind == 0:  # drop a node
            del nodes[int(rng.integers(len(nodes)))]
        elif kind == 1:  # rewire an input
            node = nodes[int(rng.integers(len(nodes)))]
            if node.input:
                other = nodes[int(rng.integers(len(nodes)))]
                node.input[int(rng.integers(len(node.input)))] = other.output[0]
        elif kind == 2:  # change an operator
            nodes[int(rng.integers(len(nodes)))].op_type = str(rng.choice(["Sub", "Relu", "Tanh", "Identity"]))
        else:  # damage a constant
            inits = model.graph.initializer
            t = inits[int(rng.integers(len(inits)))]
            arr = onnx.numpy_helper.to_array(t).copy()
            if arr.size:
                arr.reshape(-1)[:: max(1, arr.size // 3)] = np.nan if arr.dtype.kind == "f" else 0
                t.CopyFrom(onnx.numpy_helper.from_array(arr, t.name))
        yield model


def test_fuzzed_onnx_graphs_compile_or_raise_value_errors():
    outcomes = {"compiled": 0, "refused": 0}
    for model in fuzzed_onnx_models(40, seed=3):
        try:
            m = sc.compile(model)
            m(input_ids=np.array([[5, 6, 7]]), attention_mask=np.array([[1, 1, 0]]))
            outcomes["compiled"] += 1
        except (ValueError, TypeError):
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


def test_truncated_onnx_files_raise_value_errors(tmp_path):
    with open(os.path.join(DATA, "tiny_distilbert.onnx"), "rb") as f:
        data = f.read()
    for cut in (0, 1, 17, 1000, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError):
            sc.compile(path)


@pytest.mark.parametrize("dtype", ["fp32", "int8", "bf16"])
def test_random_shapes_and_values_for_packed_weights(dtype):
    rng = np.random.default_rng(11)
    patterns = ["dense", "4x1", "1x4", "16x1", "2x2", "unstructured"]
    for trial in range(40):
        n, k = int(rng.integers(0, 40)), int(rng.integers(0, 40))
        w = rng.standard_normal((n, k)).astype(np.float32) * float(rng.choice([1e-30, 1.0, 1e30]))
        w[rng.random((n, k)) < 0.5] = 0
        if trial % 5 == 0 and w.size:
            w.reshape(-1)[int(rng.integers(w.size))] = float(rng.choice([np.nan, np.inf, -np.inf]))
        pattern = patterns[trial % len(patterns)]
        try:
            lin = sc.SparseLinear(w, pattern=pattern, dtype=dtype)
        except ValueError as exc:  # int8 refuses non-finite weights, naming them
            assert dtype == "int8" and "not finite" in str(exc)
            continue
        y = lin(rng.standard_normal((int(rng.integers(0, 5)), k)))
        assert y.shape[-1] == n


def test_huge_and_empty_sizes_raise_python_errors():
    huge = np.broadcast_to(np.float32(1), (1 << 20, 1 << 20))
    with pytest.raises((MemoryError, ValueError)):
        sc.SparseLinear(huge, pattern="4x1")
    lin = sc.SparseLinear(np.zeros((0, 8), np.float32), pattern="dense")
    assert lin(np.ones((3, 8))).shape == (3, 0)


def test_nan_weights_propagate_through_a_compiled_model(tmp_path):
    from safetensors.numpy import load_file, save_file

    target = tmp_path / "nan_bert"
    target.mkdir()
    (target / "config.json").write_text(open(os.path.join(DATA, "tiny_bert", "config.json")).read())
    tensors = load_file(os.path.join(DATA, "tiny_bert", "model.safetensors"))
    tensors["encoder.layer.1.output.dense.weight"][3, 5] = np.nan
    save_file(tensors, str(target / "model.safetensors"))
    out = sc.compile(target)(input_ids=np.array([[5, 6, 7]]))["last_hidden_state"]
    assert np.isnan(out).all()  # the NaN reaches every column through LayerNorm
    with pytest.raises(ValueError, match="not finite"):
        sc.compile(target, dtype="int8")


@pytest.mark.parametrize("dtype", ["int8", "fp32"])
def test_results_do_not_depend_on_the_thread_count(dtype):
    rng = np.random.default_rng(2)
    ids = rng.integers(3, 320, (3, 40))
    path = os.path.join(DATA, "tiny_roberta")
    one = sc.compile(path, dtype=dtype, pattern="4x1", sparsity=0.5, num_threads=1)(input_ids=ids)
    two = sc.compile(path, dtype=dtype, pattern="4x1", sparsity=0.5, num_threads=2)(input_ids=ids)
    np.testing.assert_array_equal(one["last_hidden_state"], two["last_hidden_state"])
