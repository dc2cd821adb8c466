"""sparsecpu.compile on ONNX files: the torch.onnx TorchScript and dynamo exports of tiny BERT,
DistilBERT and RoBERTa (tests/data), files pruned by `sparsecpu prune`, bad files."""

import os

import numpy as np
import onnx
import pytest

import sparsecpu as sc

ort = pytest.importorskip("onnxruntime")

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
EXPORTS = ["tiny_bert", "tiny_distilbert", "tiny_roberta", "tiny_bert_dynamo", "tiny_distilbert_dynamo",
           "tiny_roberta_dynamo"]


def path_of(name):
    return os.path.join(DATA, name + ".onnx")


def session(model):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def padded_inputs(batch, seq, rng, pad_id=0):
    ids = rng.integers(3, 320, (batch, seq)).astype(np.int64)
    mask = np.ones_like(ids)
    for i in range(1, batch):
        cut = max(1, seq - 3 * i)
        mask[i, cut:] = 0
        ids[i, cut:] = pad_id
    return ids, mask


def cosines(a, b):
    a = a.reshape(-1, a.shape[-1]).astype(np.float64)
    b = b.reshape(-1, b.shape[-1]).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def compiled():
    return {name: sc.compile(path_of(name)) for name in EXPORTS}


@pytest.mark.kernels
@pytest.mark.parametrize("name", EXPORTS)
@pytest.mark.parametrize("batch,seq", [(1, 1), (2, 9), (4, 33), (3, 60)])
def test_fp32_matches_onnxruntime_on_the_same_file(compiled, name, batch, seq, rng):
    ids, mask = padded_inputs(batch, seq, rng, 1 if "roberta" in name else 0)
    expected = session(path_of(name)).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    out = compiled[name](input_ids=ids, attention_mask=mask)
    assert list(out) == ["last_hidden_state"]
    assert np.abs(out["last_hidden_state"] - expected).max() < 1e-3


def test_graph_input_and_output_names_are_the_files(rng):
    m = sc.compile(path_of("tiny_bert_token_types"))
    ids, mask = padded_inputs(2, 12, rng)
    types = (rng.random(ids.shape) > 0.5).astype(np.int64)
    expected = session(path_of("tiny_bert_token_types")).run(None, {"ids": ids, "mask": mask, "segments": types})[0]
    out = m(ids=ids, mask=mask, segments=types)
    assert list(out) == ["hidden"]
    assert np.abs(out["hidden"] - expected).max() < 1e-3
    # The canonical names work too; token types really are read.
    same = m(input_ids=ids, attention_mask=mask, token_type_ids=types)["hidden"]
    np.testing.assert_array_equal(same, out["hidden"])
    assert not np.allclose(m(ids=ids, mask=mask)["hidden"], out["hidden"])


def test_model_proto_compiles(rng):
    m = sc.compile(onnx.load(path_of("tiny_distilbert")))
    ids, mask = padded_inputs(2, 7, rng)
    expected = session(path_of("tiny_distilbert")).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(m(input_ids=ids, attention_mask=mask)["last_hidden_state"] - expected).max() < 1e-3


@pytest.mark.kernels
@pytest.mark.parametrize("name", ["tiny_bert", "tiny_roberta_dynamo"])
def test_int8_keeps_per_token_cosine(name, rng):
    ids, mask = padded_inputs(2, 40, rng, 1 if "roberta" in name else 0)
    expected = session(path_of(name)).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    actual = sc.compile(path_of(name), dtype="int8")(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    assert cosines(actual, expected).mean() >= 0.99


@pytest.mark.parametrize("name", ["tiny_bert", "tiny_distilbert_dynamo", "tiny_roberta"])
@pytest.mark.parametrize("pattern,sparsity", [("4x1", 0.8), ("2:4", None)])
def test_files_pruned_by_sparsecpu_prune(name, pattern, sparsity, rng, tmp_path):
    pruned, report = sc.prune(path_of(name), pattern=pattern, sparsity=sparsity)
    path = tmp_path / "pruned.onnx"
    onnx.save(pruned, str(path))
    m = sc.compile(path)  # keeps the zeros
    assert m.prune_report is None
    if pattern == "4x1":
        assert {layer["pattern"] for layer in m.layers} == {"4x1"}
    ids, mask = padded_inputs(2, 15, rng, 1 if "roberta" in name else 0)
    expected = session(str(path)).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(m(input_ids=ids, attention_mask=mask)["last_hidden_state"] - expected).max() < 1e-3


def test_compile_prunes_onnx_files_too(rng, tmp_path):
    m = sc.compile(path_of("tiny_bert_dynamo"), pattern="16x1", sparsity=0.9)
    assert abs(m.prune_report.sparsity - 0.9) < 0.02
    assert {layer["pattern"] for layer in m.layers} == {"16x1"}
    m.to_onnx(tmp_path / "m.onnx")
    ids, mask = padded_inputs(2, 10, rng)
    expected = session(tmp_path / "m.onnx").run(None, {"input_ids": ids, "attention_mask": mask,
                                                        "token_type_ids": np.zeros_like(ids)})[0]
    assert np.abs(m(input_ids=ids, attention_mask=mask)["last_hidden_state"] - expected).max() < 1e-3


def mutated(name, change):
    model = onnx.load(path_of(name))
    change(model)
    return model


def test_unknown_operator_is_named():
    def custom_norm(model):
        node = [n for n in model.graph.node if n.op_type == "LayerNormalization"][-2]
        node.op_type, node.domain = "FancyNorm", "com.example"
        model.opset_import.append(onnx.helper.make_opsetid("com.example", 1))

    with pytest.raises(ValueError, match=r"node '.*LayerNorm.*' \(FancyNorm, domain 'com.example'\): this operator"):
        sc.compile(mutated("tiny_bert", custom_norm))


def test_graph_that_computes_something_else_is_refused():
    """The mask subgraph is not translated, only checked: disable it and compile must refuse."""
    def no_mask(model):
        node = next(n for n in model.graph.node if n.op_type == "Constant" and
                    np.isneginf(onnx.numpy_helper.to_array(n.attribute[0].t)).any())
        node.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array([0.0], np.float32)))

    with pytest.raises(ValueError, match="differs from the ONNX graph"):
        sc.compile(mutated("tiny_bert", no_mask))


def test_two_outputs_are_refused():
    def extra_output(model):
        model.graph.output.append(onnx.helper.make_tensor_value_info(model.graph.node[-1].input[0],
                                                                     onnx.TensorProto.FLOAT, None))

    with pytest.raises(ValueError, match="2 outputs"):
        sc.compile(mutated("tiny_bert", extra_output))


def test_bad_files_give_clear_errors(tmp_path):
    with open(path_of("tiny_bert"), "rb") as f:
        data = f.read()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="truncated.onnx: not a readable ONNX model"):
        sc.compile(truncated)
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    with pytest.raises(ValueError, match="notes.onnx: not a readable ONNX model"):
        sc.compile(text)
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        sc.compile(tmp_path / "absent.onnx")


def test_external_data_loads(tmp_path, rng):
    model = onnx.load(path_of("tiny_roberta"))
    target = tmp_path / "external.onnx"
    onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="external.onnx.data", size_threshold=0)
    assert (tmp_path / "external.onnx.data").stat().st_size > target.stat().st_size
    m = sc.compile(target)
    ids, mask = padded_inputs(2, 9, rng, 1)
    expected = session(path_of("tiny_roberta")).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(m(input_ids=ids, attention_mask=mask)["last_hidden_state"] - expected).max() < 1e-3


def test_many_threads_share_one_onnx_model(compiled, rng):
    import threading

    m = compiled["tiny_distilbert_dynamo"]
    batches = [padded_inputs(2, 4 + 3 * i, rng) for i in range(5)]
    serial = [m(input_ids=ids, attention_mask=mask)["last_hidden_state"] for ids, mask in batches]
    results = {}

    def work(i):
        ids, mask = batches[i % 5]
        results[i] = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in results.items():
        np.testing.assert_array_equal(r, serial[i % 5])
    assert len(results) == 20
