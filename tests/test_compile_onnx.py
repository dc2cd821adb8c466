"""sparsecpu.compile on ONNX files: the torch.onnx TorchScript and dynamo exports of tiny BERT,
DistilBERT and RoBERTa (tests/data), files pruned by `sparsecpu prune`, bad files."""

import os
import sys

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


def mask_fill(value):
    """tiny_bert.onnx with its mask's fill for masked keys (-inf) replaced."""
    def change(model):
        node = next(n for n in model.graph.node if n.op_type == "Constant" and
                    np.isneginf(onnx.numpy_helper.to_array(n.attribute[0].t)).any())
        node.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array([value], np.float32)))
    return mutated("tiny_bert", change)


@pytest.mark.parametrize("fill,words", [(0.0, "adds 0 to masked keys"), (-2.0, "adds -2 to masked keys"),
                                        (-100.0, "needs -10000 or less")])
def test_masks_that_do_not_exclude_keys_are_refused(fill, words):
    with pytest.raises(ValueError, match=words):
        sc.compile(mask_fill(fill))


def test_mask_arithmetic_is_checked_without_onnxruntime(monkeypatch):
    """onnx's reference evaluator computes the mask subgraph when onnxruntime is missing."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ValueError, match="adds -2 to masked keys"):
        sc.compile(mask_fill(-2.0))
    assert sc.compile(mask_fill(-1e4)) is not None


def test_a_mask_that_depends_on_the_query_is_refused():
    """A causal mask added to the key padding: not a key padding mask, so not ours to run."""
    def causal(model):
        add = next(n for n in model.graph.node if n.op_type == "Add" and
                   any(o.op_type == "Softmax" and n.output[0] in o.input for o in model.graph.node))
        upper = np.triu(np.full((64, 64), -1e9, np.float32), 1)
        model.graph.initializer.append(onnx.numpy_helper.from_array(upper, "causal_full"))
        nodes = [onnx.helper.make_node("Shape", [add.input[1]], ["mask_shape"], start=-1),
                 onnx.helper.make_node("Constant", [], ["zero"], value=onnx.numpy_helper.from_array(np.array([0]))),
                 onnx.helper.make_node("Slice", ["causal_full", "zero", "mask_shape", "zero"], ["causal_rows"]),
                 onnx.helper.make_node("Constant", [], ["one"], value=onnx.numpy_helper.from_array(np.array([1]))),
                 onnx.helper.make_node("Slice", ["causal_rows", "zero", "mask_shape", "one"], ["causal"]),
                 onnx.helper.make_node("Add", [add.input[1], "causal"], ["mask_and_causal"])]
        position = list(model.graph.node).index(add)
        for i, n in enumerate(nodes):
            model.graph.node.insert(position + i, n)
        add.input[1] = "mask_and_causal"

    with pytest.raises(ValueError, match="does not broadcast over the attention scores|adds .* to keys the mask keeps"):
        sc.compile(mutated("tiny_bert", causal))


def test_mask_added_before_the_scores_compiles(rng):
    """Add(mask, scores): exporters may write either order."""
    def swap(model):
        for n in model.graph.node:
            if n.op_type == "Add" and any(o.op_type == "Softmax" and n.output[0] in o.input for o in model.graph.node):
                n.input[0], n.input[1] = n.input[1], n.input[0]

    model = mutated("tiny_bert", swap)
    ids, mask = padded_inputs(3, 12, rng)
    expected = session(model).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    out = sc.compile(model)(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    assert np.abs(out - expected).max() < 1e-3


@pytest.mark.parametrize("name", ["tiny_bert", "tiny_roberta"])
def test_exports_with_fixed_batch_and_sequence_compile(name, rng):
    """1 x 16 fixed at export: the probes use the file's shape; the compiled model takes any shape."""
    model = sc.compile(path_of(name + "_static"))
    pad = 1 if "roberta" in name else 0
    ids, mask = padded_inputs(2, 16, rng, pad)
    expected = session(path_of(name + "_static")).run(None, {"input_ids": ids[1:], "attention_mask": mask[1:]})[0]
    assert np.abs(model(input_ids=ids[1:], attention_mask=mask[1:])["last_hidden_state"] - expected).max() < 1e-3
    ids, mask = padded_inputs(3, 9, rng, pad)
    expected = session(path_of(name)).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(model(input_ids=ids, attention_mask=mask)["last_hidden_state"] - expected).max() < 1e-3


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


def test_layers_with_the_same_node_name_stay_apart(rng, monkeypatch):
    """ONNX does not require unique node names: two MatMuls named alike are still two layers."""
    def same_names(model):
        for n in model.graph.node:
            if n.op_type in ("MatMul", "LayerNormalization", "Add", "Softmax"):
                n.name = "/encoder/" + n.op_type

    model = mutated("tiny_bert", same_names)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # which refuses such files itself
    compiled = sc.compile(model, pattern="4x1", sparsity=0.5)
    names = [layer["name"] for layer in compiled.layers]
    assert len(names) == len(set(names)) == 8  # q, k, v fused; output; two feed-forward; x 2 layers
    ids, mask = padded_inputs(2, 9, rng)
    reference = sc.compile(path_of("tiny_bert"), pattern="4x1", sparsity=0.5)
    expected = reference(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    assert np.abs(compiled(input_ids=ids, attention_mask=mask)["last_hidden_state"] - expected).max() < 1e-4


@pytest.mark.parametrize("name", EXPORTS + ["tiny_bert_static", "tiny_roberta_static"])
def test_every_export_compiles_without_onnxruntime(name, monkeypatch, rng):
    """Without onnxruntime the probes (positions, token types, masks) run on onnx's reference evaluator."""
    with_ort = sc.compile(path_of(name))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    without = sc.compile(path_of(name))
    ids, mask = padded_inputs(*((1, 16) if "static" in name else (2, 9)), rng, 1 if "roberta" in name else 0)
    a, b = (m(input_ids=ids, attention_mask=mask)["last_hidden_state"] for m in (with_ort, without))
    assert np.array_equal(a, b)


def export_random_encoder(kind, path, **config):
    """A transformers encoder with random weights (no hub), exported by TorchScript with dynamic axes."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model_class, config_class = {"bert": (transformers.BertModel, transformers.BertConfig),
                                 "roberta": (transformers.RobertaModel, transformers.RobertaConfig)}[kind]
    encoder = model_class(config_class(vocab_size=64, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                                       **config)).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.randint(3, 64, (2, 5))
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(LastHiddenState().eval(), (ids, torch.ones_like(ids)), str(path),
                      input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                      dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                      opset_version=17, dynamo=False)
    return str(path)


def test_deep_encoders_compile(tmp_path, rng):
    """44 layers (38 hit the default recursion limit): the graph is read recursively from its output."""
    path = export_random_encoder("bert", tmp_path / "deep.onnx", num_hidden_layers=44, max_position_embeddings=32)
    model = sc.compile(path)
    assert len(model.layers) == 44 * 4
    ids, mask = padded_inputs(2, 9, rng)
    ids %= 64
    expected = session(path).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(model(input_ids=ids, attention_mask=mask)["last_hidden_state"] - expected).max() < 1e-3


@pytest.mark.parametrize("name,fill", [(name, None) for name in EXPORTS] + [  # TorchScript exports fill with -inf
    (name, fill) for name in EXPORTS if "dynamo" not in name for fill in (-1e4, float(np.finfo(np.float32).min))])
def test_a_sequence_of_padding_only_gets_what_the_file_gives(name, fill, rng):
    """No key to attend to: -inf masks give NaN rows made 0, -10000 shifts every score alike, the
    lowest float swallows the scores (equal weights). The compiled model follows its file."""
    model = onnx.load(path_of(name))
    if fill is not None:
        fills = [n for n in model.graph.node if n.op_type == "Constant" and
                 np.isneginf(onnx.numpy_helper.to_array(n.attribute[0].t)).any()]
        assert fills
        for n in fills:
            value = onnx.numpy_helper.to_array(n.attribute[0].t)
            n.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.full_like(value, fill)))
    ids, mask = padded_inputs(3, 7, rng, 1 if "roberta" in name else 0)
    mask[1] = 0
    expected = session(model).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    out = sc.compile(model)(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    assert np.abs(out - expected).max() < 1e-3


def test_exports_with_a_tiny_position_table_compile(tmp_path, rng):
    """RoBERTa with 8 positions (6 usable): the probes and the onnxruntime check stay inside the table."""
    path = export_random_encoder("roberta", tmp_path / "tiny_positions.onnx", num_hidden_layers=1,
                                 max_position_embeddings=8)
    model = sc.compile(path)
    ids, mask = padded_inputs(2, 6, rng, pad_id=1)
    ids %= 64
    ids[mask == 0] = 1
    expected = session(path).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(model(input_ids=ids, attention_mask=mask)["last_hidden_state"] - expected).max() < 1e-3
