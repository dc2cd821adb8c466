"""sparsecpu.compile(torch module): transformers models map their weights directly; other modules
go through torch.onnx with example_inputs. Skips without torch and transformers."""

import numpy as np
import pytest

import sparsecpu as sc

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def small(kind):
    torch.manual_seed(0)
    if kind == "bert":
        return transformers.BertModel(transformers.BertConfig(
            vocab_size=200, hidden_size=80, num_hidden_layers=2, num_attention_heads=4, intermediate_size=112,
            max_position_embeddings=40)).eval()
    if kind == "roberta":
        return transformers.RobertaModel(transformers.RobertaConfig(
            vocab_size=200, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=96,
            max_position_embeddings=42)).eval()
    return transformers.DistilBertModel(transformers.DistilBertConfig(
        vocab_size=200, dim=48, n_layers=2, n_heads=3, hidden_dim=80, max_position_embeddings=40)).eval()


def batch(rng, pad_id):
    ids = rng.integers(3, 200, (3, 17)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 11:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = pad_id
    return ids, mask


@pytest.mark.parametrize("kind", ["bert", "roberta", "distilbert"])
def test_transformers_modules_map_directly(kind, rng):
    module = small(kind)
    ids, mask = batch(rng, 1 if kind == "roberta" else 0)
    with torch.no_grad():
        expected = module(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    m = sc.compile(module)
    actual = m(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    assert np.abs(actual - expected.numpy()).max() < 1e-3
    pruned = sc.compile(module, pattern="4x1", sparsity=0.5)
    assert {layer["pattern"] for layer in pruned.layers} <= {"4x1", "dense"}


def test_other_modules_go_through_onnx(rng):
    class Wrapped(torch.nn.Module):  # not a transformers model itself
        def __init__(self):
            super().__init__()
            self.encoder = small("bert")

        def forward(self, input_ids, attention_mask):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    module = Wrapped().eval()
    ids, mask = batch(rng, 0)
    with pytest.raises(ValueError, match="pass example_inputs"):
        sc.compile(module)
    m = sc.compile(module, example_inputs={"input_ids": ids[:1, :8], "attention_mask": mask[:1, :8]})
    assert not module.training  # compiling leaves the module as it was
    with torch.no_grad():
        expected = module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    assert np.abs(m(input_ids=ids, attention_mask=mask)["last_hidden_state"] - expected).max() < 1e-3


def test_training_mode_is_refused():
    module = small("bert").train()
    with pytest.raises(ValueError, match=r"training mode .* call .eval\(\)"):
        sc.compile(module)


@pytest.mark.parametrize("kind", ["bert", "roberta", "distilbert"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_a_sequence_of_padding_only_gets_what_transformers_gives(kind, attention, rng):
    """sdpa gives a sequence with no key to attend to zero context, eager equal weights on every key."""
    module = small(kind)
    module.config._attn_implementation = attention
    ids, mask = batch(rng, 1 if kind == "roberta" else 0)
    mask[1] = 0
    with torch.no_grad():
        expected = module(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
    out = sc.compile(module)(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    assert np.abs(out - expected).max() < 1e-4
