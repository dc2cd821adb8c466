"""sparsecpu.prune and `sparsecpu prune` on exported encoders (tests/data, made by
tests/tools/export_test_models.py)."""

import hashlib
import json
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import sparsecpu as sc
from sparsecpu.pruning.onnx_graph import find_linear_weights, weight_matrix

from test_cli import sparsecpu

DATA = os.path.join(os.path.dirname(__file__), "data")
MODELS = ["tiny_bert", "tiny_distilbert", "tiny_roberta"]


def path_of(name):
    return os.path.join(DATA, f"{name}.onnx")


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def pruned_matrices(model):
    return {w.initializer: weight_matrix(model, w) for w in find_linear_weights(model)}


@pytest.mark.parametrize("name", MODELS)
def test_finds_every_projection_and_ffn_weight(name):
    weights = find_linear_weights(onnx.load(path_of(name)))
    # 2 layers x (query, key, value, attention output, FFN up, FFN down)
    assert len(weights) == 12 and all(w.skip_reason is None for w in weights)
    hidden = {w.shape[1] for w in weights if w.shape[0] == w.shape[1]}
    assert len(hidden) == 1


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("pattern,sparsity", [("4x1", 0.8), ("1x4", 0.5), ("16x1", 0.9), ("unstructured", 0.7)])
def test_block_patterns_reach_the_sparsity_in_out_in_terms(name, pattern, sparsity):
    model, report = sc.prune(path_of(name), pattern, sparsity)
    onnx.checker.check_model(model)
    r, c = (1, 1) if pattern == "unstructured" else map(int, pattern.split("x"))
    for init, w in pruned_matrices(model).items():
        n, k = w.shape
        padded = np.zeros((-(-n // r) * r, -(-k // c) * c), w.dtype)
        padded[:n, :k] = w
        blocks = np.abs(padded.reshape(padded.shape[0] // r, r, padded.shape[1] // c, c)).sum(axis=(1, 3))
        zero_share = np.mean(blocks == 0)
        assert abs(zero_share - sparsity) <= 0.5 / blocks.size + 1e-9, (init, zero_share)
    assert len(report.layers) == 12
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["sparsecpu.pattern"] == ("1x1" if pattern == "unstructured" else pattern)
    assert len(json.loads(meta["sparsecpu.layers"])) == 12
    assert abs(float(meta["sparsecpu.sparsity"]) - report.sparsity) < 1e-6


@pytest.mark.parametrize("method", ["magnitude", "activation"])
def test_two_four_keeps_two_in_every_group_of_four_inputs(method):
    pytest.importorskip("onnxruntime")
    model, report = sc.prune(path_of("tiny_bert"), "2:4", method=method, calibration=3)
    for w in pruned_matrices(model).values():
        groups = w.reshape(w.shape[0], -1, 4)
        assert (np.count_nonzero(groups, axis=2) <= 2).all()
    assert report.method == method and abs(report.sparsity - 0.5) < 0.01


def test_activation_method_uses_calibration_statistics():
    pytest.importorskip("onnxruntime")
    magnitude, _ = sc.prune(path_of("tiny_bert"), "4x1", 0.6, method="magnitude")
    activation, report = sc.prune(path_of("tiny_bert"), "4x1", 0.6, method="activation", calibration=4)
    a, b = pruned_matrices(magnitude), pruned_matrices(activation)
    assert any(not np.array_equal(a[k] != 0, b[k] != 0) for k in a)  # different masks, same budget
    assert report.fidelity is not None and 0.0 < report.fidelity <= 1.0 + 1e-9


@pytest.mark.parametrize("name", MODELS)
def test_pruned_models_run_in_onnxruntime(name):
    ort = pytest.importorskip("onnxruntime")
    ids = np.random.default_rng(0).integers(3, 300, (2, 9))
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    dense = ort.InferenceSession(path_of(name)).run(None, feed)[0]
    unchanged, report = sc.prune(path_of(name), "4x1", 0.0)  # nothing zeroed: same outputs
    np.testing.assert_allclose(ort.InferenceSession(unchanged.SerializeToString()).run(None, feed)[0], dense,
                               rtol=1e-5, atol=1e-5)
    assert report.fidelity == pytest.approx(1.0, abs=1e-6)
    pruned, report = sc.prune(path_of(name), "2:4")
    out = ort.InferenceSession(pruned.SerializeToString()).run(None, feed)[0]
    assert out.shape == dense.shape and np.isfinite(out).all() and not np.allclose(out, dense)
    assert 0.0 < report.fidelity < 1.0


def test_external_data_is_read_and_written(tmp_path, monkeypatch):
    from sparsecpu.pruning import onnx_pruner

    src = tmp_path / "external.onnx"
    onnx.save_model(onnx.load(path_of("tiny_bert")), str(src), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="external.onnx.data", size_threshold=1024)
    assert os.path.getsize(src) < 100_000  # the weights are in the .data file
    monkeypatch.setattr(onnx_pruner, "EXTERNAL_DATA_THRESHOLD", 10_000)
    out = tmp_path / "out" / "pruned.onnx"
    out.parent.mkdir()
    result = sparsecpu("prune", str(src), "-o", str(out), "--pattern", "4x1", "--sparsity", "0.5", "--quiet")
    assert result.returncode == 0, result.stderr
    model, report = sc.prune(str(src), "4x1", 0.5)
    onnx_pruner.save_model(model, str(out))
    assert (tmp_path / "out" / "pruned.onnx.data").exists()
    reloaded = onnx.load(str(out))
    assert {p.key for p in reloaded.metadata_props} >= {"sparsecpu.pattern", "sparsecpu.layers"}
    assert abs(np.mean(pruned_matrices(reloaded)[report.layers[0]["initializer"]] == 0) - 0.5) < 0.02


def test_global_sparsity_is_reached_over_all_layers():
    model, report = sc.prune(path_of("tiny_bert"), "4x1", 0.7, global_sparsity=True)
    per_layer = [layer["sparsity"] for layer in report.layers]
    assert abs(report.sparsity - 0.7) < 0.01
    assert max(per_layer) - min(per_layer) > 0.01  # not the same in every layer


def test_include_and_exclude():
    _, report = sc.prune(path_of("tiny_bert"), "4x1", 0.5, include=r"intermediate")
    assert {layer["name"].split("/")[-3] for layer in report.layers} == {"intermediate"}
    _, report = sc.prune(path_of("tiny_bert"), "4x1", 0.5, exclude=r"attention")
    assert len(report.layers) == 4 and all("attention" not in layer["name"] for layer in report.layers)
    assert all(s["reason"] == "matched by --exclude" for s in report.skipped)


def test_shared_weight_is_pruned_once_and_heads_and_narrow_layers_stay_dense():
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((96, 96)).astype(np.float32)
    head = rng.standard_normal((96, 3)).astype(np.float32)
    narrow = rng.standard_normal((96, 32)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["a"], name="first"),
        helper.make_node("LayerNormalization", ["a", "g", "b"], ["n"], name="norm"),
        helper.make_node("MatMul", ["n", "W"], ["c"], name="second_use_of_W"),
        helper.make_node("MatMul", ["c", "narrow"], ["d"], name="narrow_mm"),
        helper.make_node("MatMul", ["c", "head"], ["logits"], name="classifier"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 96])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 3]),
         helper.make_tensor_value_info("d", TensorProto.FLOAT, ["b", 32])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(head, "head"),
         numpy_helper.from_array(narrow, "narrow"), numpy_helper.from_array(np.ones(96, np.float32), "g"),
         numpy_helper.from_array(np.zeros(96, np.float32), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    pruned, report = sc.prune(model, "4x1", 0.5)
    assert [layer["initializer"] for layer in report.layers] == ["W"]
    reasons = {s["initializer"]: s["reason"] for s in report.skipped}
    assert "classifier head" in reasons["head"] and "narrow" in reasons
    out = {i.name: numpy_helper.to_array(i) for i in pruned.graph.initializer}
    assert np.array_equal(out["head"], head) and np.array_equal(out["narrow"], narrow)
    assert abs(np.mean(out["W"] == 0) - 0.5) < 0.01


def test_gemm_with_trans_b_is_read_as_out_in():
    from onnx import TensorProto, helper

    w = np.zeros((128, 64), np.float32)  # (out, in) with transB=1
    w[:, :8] = 1.0  # inputs 0..7 matter for every output: 4x1 blocks along outputs
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["y"], transB=1),
         helper.make_node("LayerNormalization", ["y", "g", "b"], ["z"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 128])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.ones(128, np.float32), "g"),
         numpy_helper.from_array(np.zeros(128, np.float32), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    _, report = sc.prune(model, "4x1", 0.5)
    assert report.layers[0]["shape"] == [128, 64]


@pytest.mark.parametrize("kwargs,usage,words", [
    (dict(pattern="4x1"), True, ["--sparsity"]),
    (dict(pattern="4x1", sparsity=1.0), True, ["--sparsity", "1"]),
    (dict(pattern="4x1", sparsity=-0.2), True, ["-0.2"]),
    (dict(pattern="2:4", sparsity=0.7), True, ["2:4", "0.5", "0.7"]),
    (dict(pattern="2:4", global_sparsity=True), True, ["--global"]),
    (dict(pattern="4x1", sparsity=0.5, method="random"), True, ["--method", "random"]),
    (dict(pattern="4x1", sparsity=0.5, include="("), True, ["--include"]),
    (dict(pattern="4x1", sparsity=0.5, include="no_such_layer"), False, ["no prunable weights"]),
])
def test_refusals(kwargs, usage, words):
    with pytest.raises(sc.pruning.PruneError) as info:
        sc.prune(path_of("tiny_bert"), **kwargs)
    assert info.value.usage == usage
    for word in words:
        assert word in str(info.value)


def test_cli_writes_a_valid_model_and_never_touches_the_input(tmp_path):
    src = path_of("tiny_distilbert")
    before = digest(src)
    out = tmp_path / "pruned.onnx"
    result = sparsecpu("prune", src, "-o", str(out), "--pattern", "4x1", "--sparsity", "0.8")
    assert result.returncode == 0, result.stderr
    assert "80.0%" in result.stdout and f"wrote {out}" in result.stdout
    onnx.checker.check_model(onnx.load(str(out)))
    assert digest(src) == before
    assert not [p for p in os.listdir(tmp_path) if p != "pruned.onnx"]  # no temporary file left


@pytest.mark.parametrize("args,code,words", [
    (["-o", "{src}"], 2, ["is the input file"]),
    (["-o", "{existing}"], 2, ["already exists", "--force"]),
    (["--pattern", "5x1"], 2, ["--pattern", "5x1"]),
    (["--sparsity", "1.5"], 2, ["--sparsity"]),
    (["--calibration", "many"], 2, ["--calibration", "many"]),
    (["{missing}"], 1, ["no such file"]),
    (["{garbage}"], 1, ["not a readable ONNX model"]),
    (["{truncated}"], 1, ["not a readable ONNX model"]),
])
def test_cli_errors_are_one_line(tmp_path, args, code, words):
    src = path_of("tiny_bert")
    existing = tmp_path / "existing.onnx"
    existing.write_bytes(b"mine")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01 not onnx at all")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(open(src, "rb").read()[:50000])
    values = dict(src=src, existing=str(existing), missing=str(tmp_path / "missing.onnx"), garbage=str(garbage),
                  truncated=str(truncated))
    argv = {"input": src, "-o": str(tmp_path / "out.onnx"), "--pattern": "4x1", "--sparsity": "0.5"}
    positional = None
    it = iter(args)
    for a in it:
        if a.startswith("-"):
            argv[a] = next(it).format(**values)
        else:
            positional = a.format(**values)
    if positional:
        argv["input"] = positional
    cmd = ["prune", argv.pop("input")] + [x for kv in argv.items() for x in kv]
    result = sparsecpu(*cmd)
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsecpu prune: error: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert existing.read_bytes() == b"mine"
    assert not (tmp_path / "out.onnx").exists()


def test_prune_torch_in_place():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(96, 128), torch.nn.GELU(), torch.nn.Linear(128, 96),
                                torch.nn.Linear(96, 2))
    report = sc.prune_torch(model, "4x1", 0.75)
    assert [layer["name"] for layer in report.layers] == ["0", "2"]
    assert report.skipped[0]["name"] == "3" and "narrower" in report.skipped[0]["reason"]
    w = model[0].weight.detach().numpy()
    blocks = np.abs(w.reshape(32, 4, 96)).sum(axis=1)
    assert abs(np.mean(blocks == 0) - 0.75) < 0.01
