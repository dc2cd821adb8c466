"""sparsecpu.compile on Hugging Face directories: tiny BERT, DistilBERT and RoBERTa
(tests/data, same weights as the committed ONNX exports) against onnxruntime
running the exporter's file; to_onnx; summaries; errors; threads."""

import json
import os
import shutil
import threading

import numpy as np
import pytest

import sparsecpu as sc
from sparsecpu import _core

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
FAMILIES = ["tiny_bert", "tiny_distilbert", "tiny_roberta"]
ort = pytest.importorskip("onnxruntime")


def session(path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def inputs_for(family, batch, seq, rng, padded=True):
    vocab = 320
    ids = rng.integers(3, vocab, (batch, seq)).astype(np.int64)
    mask = np.ones((batch, seq), np.int64)
    if padded and batch > 1 and seq > 2:
        mask[1, seq // 2:] = 0
        ids[1, seq // 2:] = 1 if family == "tiny_roberta" else 0  # the tokenizer's padding id
    return ids, mask


def exporter_output(family, ids, mask):
    return session(os.path.join(DATA, family + ".onnx")).run(None, {"input_ids": ids, "attention_mask": mask})[0]


def token_cosines(a, b):
    a = a.reshape(-1, a.shape[-1]).astype(np.float64)
    b = b.reshape(-1, b.shape[-1]).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def compiled():
    return {(family, dtype): sc.compile(os.path.join(DATA, family), dtype=dtype)
            for family in FAMILIES for dtype in ("fp32", "int8")}


@pytest.mark.kernels
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("batch,seq", [(1, 1), (2, 7), (3, 33), (4, 64)])
def test_fp32_matches_the_exported_model(compiled, family, batch, seq, rng):
    ids, mask = inputs_for(family, batch, seq, rng)
    expected = exporter_output(family, ids, mask)
    out = compiled[family, "fp32"](input_ids=ids, attention_mask=mask)
    assert list(out) == ["last_hidden_state"]
    actual = out["last_hidden_state"]
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    assert np.abs(actual - expected).max() < 1e-3


@pytest.mark.kernels
@pytest.mark.parametrize("family", FAMILIES)
def test_bf16_stays_close_to_the_exported_model(family, rng, tmp_path):
    m = sc.compile(os.path.join(DATA, family), dtype="bf16")
    ids, mask = inputs_for(family, 2, 30, rng)
    actual = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    cos = token_cosines(actual, exporter_output(family, ids, mask))
    assert cos.mean() >= 0.999 and cos.min() >= 0.99
    path = tmp_path / "bf16.onnx"  # the bf16-rounded weights; activations are rounded only by us
    m.to_onnx(path)
    feeds = {"input_ids": ids, "attention_mask": mask}
    if family != "tiny_distilbert":
        feeds["token_type_ids"] = np.zeros_like(ids)
    assert token_cosines(actual, session(str(path)).run(None, feeds)[0]).min() >= 0.999


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype,pattern,sparsity", [("fp32", None, None), ("int8", "4x1", 0.8), ("fp32", "2:4", None)])
def test_to_onnx_file_compiles_back_to_the_same_model(family, dtype, pattern, sparsity, rng, tmp_path):
    m = sc.compile(os.path.join(DATA, family), dtype=dtype, pattern=pattern, sparsity=sparsity)
    path = tmp_path / "m.onnx"
    m.to_onnx(path)
    again = sc.compile(path, dtype=dtype)
    ids, mask = inputs_for(family, 3, 23, rng)
    mask[2] = 0  # padding only: the file carries what the model gives it
    expected = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    actual = again(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)
    assert again.dtype == dtype and again.summary().count("attention") == m.summary().count("attention")


@pytest.mark.kernels
@pytest.mark.parametrize("family", FAMILIES)
def test_int8_stays_close_to_the_exported_model(compiled, family, rng):
    ids, mask = inputs_for(family, 2, 40, rng)
    expected = exporter_output(family, ids, mask)
    actual = compiled[family, "int8"](input_ids=ids, attention_mask=mask)["last_hidden_state"]
    cos = token_cosines(actual, expected)
    assert cos.mean() >= 0.99 and cos.min() >= 0.95


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype,pattern,sparsity", [("fp32", "4x1", 0.8), ("fp32", "16x1", 0.9), ("int8", "4x1", 0.8),
                                                    ("fp32", "2:4", None), ("int8", "2:4", None)])
def test_pruned_model_matches_onnxruntime_on_its_own_export(family, dtype, pattern, sparsity, rng, tmp_path):
    m = sc.compile(os.path.join(DATA, family), dtype=dtype, pattern=pattern, sparsity=sparsity)
    assert m.prune_report is not None and len(m.prune_report.layers) > 0
    expected_sparsity = 0.5 if pattern == "2:4" else sparsity
    assert abs(m.prune_report.sparsity - expected_sparsity) < 0.05
    path = tmp_path / "compiled.onnx"
    m.to_onnx(path)
    ids, mask = inputs_for(family, 3, 23, rng)
    mask[2] = 0  # padding only: the file gives it what the model gives it
    feeds = {"input_ids": ids, "attention_mask": mask}
    if family != "tiny_distilbert":
        feeds["token_type_ids"] = np.zeros_like(ids)
    expected = session(str(path)).run(None, feeds)[0]
    actual = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    if dtype == "fp32":
        assert np.abs(actual - expected).max() < 1e-3
    else:  # the file holds the dequantized int8 weights; activations are quantized only by us
        assert token_cosines(actual, expected).mean() >= 0.99


@pytest.mark.parametrize("dtype", ["fp32", "int8", "bf16"])
def test_2_4_pruned_layers_run_2_4_kernels(dtype):
    m = sc.compile(os.path.join(DATA, "tiny_bert"), pattern="2:4", dtype=dtype)
    for layer in m.layers:
        assert layer["pattern"] == "2:4", layer
        assert "semi24" in layer["kernel"], layer
        assert layer["packed_bytes"] <= layer["dense_bytes"] * 0.75  # fp32: 4-byte value + 2-byte column per kept half


@pytest.mark.kernels
def test_int8_and_bf16_models_allow_bf16_attention_and_fp32_models_do_not(compiled):
    """int8 and bf16 models round attention's Q, K, weights and V to bf16 where the CPU has an
    AVX512-BF16 kernel and bf16 products pay (forced ISA levels below it, or SPARSECPU_BF16_PRODUCTS=off,
    run fp32 kernels); fp32 models never do."""
    bf16_usable = _core.attention_kernel_for("bf16").endswith("_bf16")
    models = dict(compiled)
    models["tiny_bert", "bf16"] = sc.compile(os.path.join(DATA, "tiny_bert"), dtype="bf16")
    for (family, dtype), m in models.items():
        kernels = {op["kernel"] for op in m._plan.ops() if op["kind"] == "attention"}
        assert len(kernels) == 1, kernels
        assert kernels.pop().endswith("_bf16") == (dtype in ("int8", "bf16") and bf16_usable), (family, dtype)


@pytest.mark.kernels
def test_int8_qkv_hands_the_bf16_attention_bf16_with_the_same_results(compiled, rng):
    """Where the attention kernel takes bf16 Q, K and V, an int8 model's QKV projection writes them
    as bf16 (the values the kernel would round them to itself): the outputs equal those of the
    float hand-over bit for bit. fp32 models, and CPUs without the kernel, hand over floats."""
    bf16_qkv = _core.attention_kernel_for("bf16") == "attention_avx512_bf16"
    for (family, dtype), m in compiled.items():
        ops = m._plan.ops()
        fused = [op for op in ops if op["bf16_qkv"]]
        if dtype == "fp32" or not bf16_qkv:
            assert not fused, (family, dtype)
            continue
        attention = [op for op in ops if op["kind"] == "attention"]
        assert [op["kind"] for op in fused] == ["linear", "attention"] * len(attention), (family, dtype)
        ids, mask = inputs_for(family, 3, 33, rng)
        fast = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]
        m._plan.bf16_attention_inputs = False
        try:
            assert not any(op["bf16_qkv"] for op in m._plan.ops())
            plain = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]
        finally:
            m._plan.bf16_attention_inputs = True
        np.testing.assert_array_equal(fast, plain, err_msg=family)


@pytest.mark.kernels
@pytest.mark.parametrize("read_again", [None, "residual", "between", "own residual"])
def test_a_qkv_buffer_another_op_reads_stays_float(read_again, rng):
    """The bf16 hand-over only where the attention alone reads the projection's output: not when
    an op reads that buffer after the attention (as a residual here) or before it, nor when the
    projection reads it itself (its residual is its output). One sequence per pass: the hand-over
    repeats in every pass."""
    if _core.attention_kernel_for("bf16") != "attention_avx512_bf16":
        pytest.skip("no attention kernel here takes bf16 Q, K and V (or bf16 products are off)")
    width, heads, head_dim = 32, 2, 16
    plan = _core.Plan()
    hidden, qkv, context, out = (plan.add_buffer(w) for w in (width, 3 * width, width, 3 * width))
    table = lambda rows: rng.standard_normal((rows, width)).astype(np.float32)  # noqa: E731
    plan.set_embedding(table(50), table(16), None, "absolute", -1, hidden)
    projection = rng.standard_normal((3 * width, width)).astype(np.float32)
    if read_again == "own residual":  # qkv = first + int8 projection, in place
        plan.add_linear("first", _core.LinearF32(projection, None, "dense", 1, 1, "none", ""), hidden, qkv)
    plan.add_linear("qkv", _core.LinearS8(projection, None, "dense", 1, 1, "none"), hidden, qkv,
                    qkv if read_again == "own residual" else -1)
    if read_again == "between":
        plan.add_linear("between", _core.LinearF32(np.eye(width, 3 * width, dtype=np.float32), None, "dense", 1, 1,
                                                   "none", ""), qkv, hidden)
    plan.add_attention("attention", qkv, 0, width, 2 * width, heads, head_dim, 0.25, context, products="bf16")
    after = _core.LinearF32(projection, None, "dense", 1, 1, "none", "")
    plan.add_linear("after", after, context, out, qkv if read_again == "residual" else -1)
    plan.set_output(out)
    fused = {op["name"] for op in plan.ops() if op["bf16_qkv"]}
    assert fused == (set() if read_again else {"qkv", "attention"})
    plan.tokens_per_pass = 9
    ids = rng.integers(0, 50, (2, 9)).astype(np.int64)
    fast = plan.run(ids)
    plan.bf16_attention_inputs = False
    np.testing.assert_array_equal(fast, plan.run(ids))


def test_block_pruned_layers_run_block_kernels(rng):
    m = sc.compile(os.path.join(DATA, "tiny_bert"), pattern="4x1", sparsity=0.9)
    for layer in m.layers:
        assert layer["pattern"] == "4x1", layer
        assert "bsr" in layer["kernel"], layer
        assert layer["density"] == pytest.approx(0.1, abs=0.03)
        assert layer["packed_bytes"] < layer["dense_bytes"] / 3


def test_zeros_in_the_weights_are_kept_and_detected(tmp_path, rng):
    """A directory pruned earlier: pattern=None finds the blocks from the zeros."""
    from safetensors.numpy import load_file, save_file

    source = os.path.join(DATA, "tiny_bert")
    target = tmp_path / "pruned_bert"
    target.mkdir()
    shutil.copy(os.path.join(source, "config.json"), target / "config.json")
    tensors = load_file(os.path.join(source, "model.safetensors"))
    for name, value in tensors.items():
        if name.endswith(".weight") and value.ndim == 2 and "embeddings" not in name:
            tensors[name] = sc.prune_weight(value, "16x1", 0.9)
    save_file(tensors, str(target / "model.safetensors"))
    m = sc.compile(target)
    assert m.prune_report is None
    assert {layer["pattern"] for layer in m.layers} == {"16x1"}
    dense_pruned = sc.compile(target, dtype="fp32")
    ids, mask = inputs_for("tiny_bert", 2, 9, rng)
    np.testing.assert_array_equal(m(input_ids=ids)["last_hidden_state"],
                                  dense_pruned(input_ids=ids)["last_hidden_state"])


def test_unpruned_layers_run_dense(compiled):
    for layer in compiled["tiny_bert", "fp32"].layers:
        assert layer["pattern"] == "dense" and "dense" in layer["kernel"]


def test_activation_method_prunes_with_calibration(rng):
    path = os.path.join(DATA, "tiny_bert")
    ids, _ = inputs_for("tiny_bert", 4, 16, rng, padded=False)
    magnitude = sc.compile(path, pattern="4x1", sparsity=0.5)
    activation = sc.compile(path, pattern="4x1", sparsity=0.5, method="activation", calibration={"input_ids": ids})
    assert activation.prune_report.method == "activation"
    masks = [np.array(layer["density"]) for layer in activation.layers]
    assert all(0.4 < d < 0.6 for d in masks)
    a = magnitude(input_ids=ids)["last_hidden_state"]
    b = activation(input_ids=ids)["last_hidden_state"]
    assert not np.array_equal(a, b)  # different weights were kept


def test_missing_inputs_default_to_ones_and_zeros(compiled, rng):
    m = compiled["tiny_bert", "fp32"]
    ids, _ = inputs_for("tiny_bert", 2, 12, rng)
    implicit = m(input_ids=ids)["last_hidden_state"]
    explicit = m(input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids))
    np.testing.assert_array_equal(implicit, explicit["last_hidden_state"])


def test_token_types_change_bert_output(compiled, rng):
    m = compiled["tiny_bert", "fp32"]
    ids, _ = inputs_for("tiny_bert", 1, 6, rng)
    types = np.array([[0, 0, 0, 1, 1, 1]])
    a = m(input_ids=ids)["last_hidden_state"]
    b = m(input_ids=ids, token_type_ids=types)["last_hidden_state"]
    assert not np.allclose(a[0, 3:], b[0, 3:])


def test_int32_ids_and_bool_mask_are_accepted(compiled, rng):
    m = compiled["tiny_bert", "fp32"]
    ids, mask = inputs_for("tiny_bert", 2, 8, rng)
    a = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    b = m(input_ids=ids.astype(np.int32), attention_mask=mask.astype(bool))["last_hidden_state"]
    np.testing.assert_array_equal(a, b)


def test_padding_does_not_change_real_tokens(compiled, rng):
    m = compiled["tiny_bert", "fp32"]
    ids, _ = inputs_for("tiny_bert", 1, 10, rng, padded=False)
    alone = m(input_ids=ids)["last_hidden_state"]
    padded_ids = np.concatenate([ids, np.zeros((1, 5), np.int64)], axis=1)
    mask = np.concatenate([np.ones((1, 10), np.int64), np.zeros((1, 5), np.int64)], axis=1)
    padded = m(input_ids=padded_ids, attention_mask=mask)["last_hidden_state"]
    np.testing.assert_allclose(padded[:, :10], alone, atol=1e-5)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"input_ids": [[5, 400]]}, ValueError, r"sequence 0, token 1 is 400, outside the vocabulary \[0, 320\)"),
    ({"input_ids": [[5, -1]]}, ValueError, "token 1 is -1"),
    ({"input_ids": np.ones((1, 65), np.int64)}, ValueError, "position 64 but the model has 64 position embeddings"),
    ({"input_ids": [[1.0, 2.0]]}, TypeError, "input_ids must hold integers"),
    ({"input_ids": [5, 6]}, ValueError, r"input_ids must be 2-D \(batch, sequence\), got shape \(2,\)"),
    ({"input_ids": [[5, 6]], "attention_mask": [[1]]}, ValueError, "attention_mask must have the shape of input_ids"),
    ({"input_ids": [[5, 6]], "attention_mask": [[1, 2]]}, ValueError, "0 \\(padding\\) and 1 \\(token\\) only"),
    ({"input_ids": [[5, 6]], "token_type_ids": [[0, 2]]}, ValueError, r"token_type_ids: sequence 0, token 1 is 2"),
    ({"input_ids": [[5, 6]], "inputs_embeds": [[0.0]]}, TypeError, "unexpected input"),
    ({}, TypeError, "input_ids is required"),
])
def test_bad_inputs_raise_clear_errors(compiled, kwargs, error, message):
    with pytest.raises(error, match=message):
        compiled["tiny_bert", "fp32"](**kwargs)


def test_roberta_positions_count_from_the_padding_index(compiled):
    # RoBERTa's 66 positions hold 64 tokens (positions start after padding_idx 1).
    m = compiled["tiny_roberta", "fp32"]
    m(input_ids=np.full((1, 64), 5))
    with pytest.raises(ValueError, match="needs position 66"):
        m(input_ids=np.full((1, 65), 5))


def test_distilbert_has_no_token_types(compiled):
    with pytest.raises(ValueError, match=r"token_type_ids: sequence 0, token 0 is 1, outside \[0, 1\)"):
        compiled["tiny_distilbert", "fp32"](input_ids=[[5]], token_type_ids=[[1]])


def test_empty_batch_returns_empty_output(compiled):
    out = compiled["tiny_bert", "fp32"](input_ids=np.zeros((0, 5), np.int64))["last_hidden_state"]
    assert out.shape == (0, 5, 96)


def write_dir(tmp_path, config=None, tensors=None, raw=None):
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    source = os.path.join(DATA, "tiny_bert")
    if config is None:
        shutil.copy(os.path.join(source, "config.json"), d / "config.json")
    else:
        (d / "config.json").write_text(json.dumps(config) if isinstance(config, dict) else config)
    if raw is not None:
        (d / "model.safetensors").write_bytes(raw)
    elif tensors is not None:
        from safetensors.numpy import save_file

        save_file(tensors, str(d / "model.safetensors"))
    else:
        shutil.copy(os.path.join(source, "model.safetensors"), d / "model.safetensors")
    return d


def tiny_config():
    with open(os.path.join(DATA, "tiny_bert", "config.json")) as f:
        return json.load(f)


def tiny_tensors():
    from safetensors.numpy import load_file

    return load_file(os.path.join(DATA, "tiny_bert", "model.safetensors"))


def test_bad_model_directories_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        sc.compile(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        sc.compile(tmp_path / "empty")
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match=r"expected an ONNX file \(.onnx\) or a Hugging Face model directory"):
        sc.compile(tmp_path / "weights.bin")
    with pytest.raises(TypeError, match="model must be a path"):
        sc.compile(42)
    d = write_dir(tmp_path, config="{not json")
    with pytest.raises(ValueError, match="config.json: not readable JSON"):
        sc.compile(d)
    with pytest.raises(ValueError, match="model_type 'gpt2' is not supported"):
        sc.compile(write_dir(tmp_path, config=dict(tiny_config(), model_type="gpt2")))
    with pytest.raises(ValueError, match="hidden_act 'gelu_new' is not supported"):
        sc.compile(write_dir(tmp_path, config=dict(tiny_config(), hidden_act="gelu_new")))
    with pytest.raises(ValueError, match="'num_attention_heads' must be a positive integer"):
        sc.compile(write_dir(tmp_path, config=dict(tiny_config(), num_attention_heads=0)))
    tensors = tiny_tensors()
    del tensors["encoder.layer.1.attention.self.key.weight"]
    with pytest.raises(ValueError, match="missing tensor 'encoder.layer.1.attention.self.key.weight'"):
        sc.compile(write_dir(tmp_path, config=tiny_config(), tensors=tensors))
    tensors = tiny_tensors()
    tensors["encoder.layer.0.intermediate.dense.weight"] = tensors["encoder.layer.0.intermediate.dense.weight"][:10]
    with pytest.raises(ValueError, match=r"intermediate.dense.weight' has shape \(10, 96\), expected \(200, 96\)"):
        sc.compile(write_dir(tmp_path, config=tiny_config(), tensors=tensors))
    with open(os.path.join(DATA, "tiny_bert", "model.safetensors"), "rb") as f:
        truncated = f.read()[:5000]
    with pytest.raises(ValueError, match=r"model.safetensors: tensor '.*' \(F32 \[.*\]\) does not fit the file"):
        sc.compile(write_dir(tmp_path, config=tiny_config(), raw=truncated))
    with pytest.raises(ValueError, match="model.safetensors: not a readable safetensors file"):
        sc.compile(write_dir(tmp_path, config=tiny_config(), raw=b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      "))
    with pytest.raises(ValueError, match="shorter than its header"):
        sc.compile(write_dir(tmp_path, config=tiny_config(), raw=b"abc"))
    with pytest.raises(ValueError, match="config.json: 'layer_norm_eps' must be a positive number, got None"):
        sc.compile(write_dir(tmp_path, config=dict(tiny_config(), layer_norm_eps=None)))
    with pytest.raises(ValueError, match=r"config.json: 'pad_token_id' must be a token id \(an integer >= 0\), got 'x'"):
        sc.compile(write_dir(tmp_path, config=dict(tiny_config(), pad_token_id="x")))
    with pytest.raises(ValueError, match="config.json: num_hidden_layers is 1 but .*model.safetensors holds tensors "
                                         "of 2 layers"):
        sc.compile(write_dir(tmp_path, config=dict(tiny_config(), num_hidden_layers=1)))


def test_sharded_checkpoints_are_read(tmp_path, rng):
    from safetensors.numpy import save_file

    tensors = tiny_tensors()
    d = write_dir(tmp_path)
    os.remove(d / "model.safetensors")
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, part in shards.items():
        save_file({n: tensors[n] for n in part}, str(d / file))
    index = {"metadata": {}, "weight_map": {n: file for file, part in shards.items() for n in part}}
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    ids = rng.integers(3, 320, (2, 9))
    expected = sc.compile(os.path.join(DATA, "tiny_bert"))(input_ids=ids)["last_hidden_state"]
    np.testing.assert_array_equal(sc.compile(d)(input_ids=ids)["last_hidden_state"], expected)
    index["weight_map"]["extra.weight"] = "model-00001-of-00002.safetensors"
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="index.json: lists 'extra.weight' in 'model-00001-of-00002.safetensors', "
                                         "which does not hold it"):
        sc.compile(d)
    index["weight_map"]["extra.weight"] = "../elsewhere.safetensors"
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"shard '../elsewhere.safetensors' is not a file in"):
        sc.compile(d)


def test_safetensors_reader_matches_the_library(tmp_path):
    """Our memory-mapped reader against safetensors' own, including float16 and bfloat16 files."""
    from safetensors.numpy import load_file, save_file

    from sparsecpu.frontend.hf import read_safetensors

    path = os.path.join(DATA, "tiny_bert", "model.safetensors")
    ours, theirs = read_safetensors(path), load_file(path)
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7)).astype(np.float32)
    save_file({"half": x.astype(np.float16), "ids": np.arange(4, dtype=np.int64)}, str(tmp_path / "h.safetensors"))
    got = read_safetensors(str(tmp_path / "h.safetensors"))
    np.testing.assert_array_equal(got["half"], x.astype(np.float16))
    np.testing.assert_array_equal(got["ids"], np.arange(4))
    # bfloat16 as safetensors writes it: the upper 16 bits of each float32, dtype "BF16".
    import json
    import struct

    upper = (x.view(np.uint32) >> 16).astype(np.uint16)
    header = json.dumps({"w": {"dtype": "BF16", "shape": [5, 7], "data_offsets": [0, upper.nbytes]}}).encode()
    (tmp_path / "b.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + upper.tobytes())
    expected = (upper.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(read_safetensors(str(tmp_path / "b.safetensors"))["w"], expected)


def test_bad_arguments_raise_clear_errors():
    path = os.path.join(DATA, "tiny_bert")
    with pytest.raises(ValueError, match="dtype 'fp16': expected one of"):
        sc.compile(path, dtype="fp16")
    with pytest.raises(ValueError, match="needs a sparsity"):
        sc.compile(path, pattern="4x1")
    with pytest.raises(ValueError, match="sparsity needs a pattern"):
        sc.compile(path, sparsity=0.5)
    with pytest.raises(ValueError, match="fixes the sparsity at 0.5"):
        sc.compile(path, pattern="2:4", sparsity=0.8)
    with pytest.raises(ValueError, match="method 'random'"):
        sc.compile(path, pattern="4x1", sparsity=0.5, method="random")
    with pytest.raises(ValueError, match="num_threads"):
        sc.compile(path, num_threads=-1)
    for sparsity in (True, "0.5", 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\], got"):
            sc.compile(path, pattern="4x1", sparsity=sparsity)
    with pytest.raises(ValueError, match="calibration is for method='activation'; method 'magnitude' does not use it"):
        sc.compile(path, pattern="4x1", sparsity=0.5, calibration=4)
    with pytest.raises(ValueError, match="calibration: every sequence's attention_mask is all zeros"):
        sc.compile(path, pattern="4x1", sparsity=0.5, method="activation",
                   calibration={"input_ids": np.ones((2, 5), np.int64), "attention_mask": np.zeros((2, 5), np.int64)})


def test_summary_names_kernels_sizes_and_time_shares(compiled, rng):
    m = sc.compile(os.path.join(DATA, "tiny_bert"), dtype="int8", pattern="4x1", sparsity=0.8)
    before = m.summary()
    assert "after the first call" in before
    ids, _ = inputs_for("tiny_bert", 2, 16, rng)
    m(input_ids=ids)
    text = m.summary()
    assert "spmm_s8_quads" in text and "attention_" in text and "layernorm_" in text
    assert "encoder.layer.1.output.dense" in text and "4x1" in text
    assert "MB dense fp32" in text and "over 1 call(s)" in text
    shares = [float(line.split()[-1].rstrip("%")) for line in text.splitlines()[1:-2]]
    assert abs(sum(shares) - 100.0) < 1.0


def test_many_threads_share_one_model(compiled, rng):
    m = compiled["tiny_bert", "int8"]
    batches = [inputs_for("tiny_bert", 2, 5 + i, rng) for i in range(6)]
    serial = [m(input_ids=ids, attention_mask=mask)["last_hidden_state"] for ids, mask in batches]
    results = [None] * (len(batches) * 4)

    def work(i):
        ids, mask = batches[i % len(batches)]
        results[i] = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r, serial[i % len(batches)])


def test_num_threads_is_per_model(rng):
    path = os.path.join(DATA, "tiny_bert")
    one = sc.compile(path, num_threads=1)
    two = sc.compile(path, num_threads=2)
    ids, mask = inputs_for("tiny_bert", 2, 20, rng)
    np.testing.assert_allclose(one(input_ids=ids, attention_mask=mask)["last_hidden_state"],
                               two(input_ids=ids, attention_mask=mask)["last_hidden_state"], atol=1e-5)


def test_to_onnx_leaves_no_temporary_file_on_failure(compiled, tmp_path):
    target = tmp_path / "missing_folder" / "m.onnx"
    with pytest.raises(OSError):
        compiled["tiny_bert", "fp32"].to_onnx(target)
    assert not (tmp_path / "missing_folder").exists()
    assert list(tmp_path.iterdir()) == []


def generated_bert(folder, hidden=64, heads=4, inner=128, layers=2, positions=300, vocab=500, seed=0):
    """A BERT directory with random weights and a long position table."""
    from sparsecpu.benchmarks.model import generate_bert

    return generate_bert(folder, hidden, heads, inner, layers, positions, vocab, seed)


@pytest.mark.parametrize("batch,seq", [(4, 256), (1, 255), (3, 130)])
def test_long_sequences_match_onnxruntime(batch, seq, tmp_path, rng):
    """Sequences past the tiny models' 64 positions: against onnxruntime on our exported file
    (whose graph the tests above check against the exporter's)."""
    m = sc.compile(generated_bert(str(tmp_path / "bert")))
    path = tmp_path / "bert.onnx"
    m.to_onnx(path)
    ids = rng.integers(1, 500, (batch, seq)).astype(np.int64)
    mask = np.ones_like(ids)
    for i in range(1, batch):
        mask[i, seq - 37 * i:] = 0
    types = (rng.random((batch, seq)) > 0.5).astype(np.int64)
    expected = session(str(path)).run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
    actual = m(input_ids=ids, attention_mask=mask, token_type_ids=types)["last_hidden_state"]
    assert np.abs(actual - expected).max() < 1e-3


def test_sequences_run_in_passes_give_the_same_answers(rng):
    m = sc.compile(os.path.join(DATA, "tiny_roberta"), dtype="int8")
    ids, mask = inputs_for("tiny_roberta", 5, 40, rng)
    whole = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    m._plan.tokens_per_pass = 1  # one sequence per pass
    one_by_one = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    np.testing.assert_array_equal(whole, one_by_one)
    for i in range(5):
        alone = m(input_ids=ids[i:i + 1], attention_mask=mask[i:i + 1])["last_hidden_state"]
        np.testing.assert_array_equal(alone[0], whole[i])
