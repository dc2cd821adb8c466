#!/usr/bin/env python3
"""Regenerates the small exported encoders in tests/data (committed, so test runs
need neither torch nor transformers). Random weights from transformers configs,
no model hub; exported with the TorchScript exporter, dynamic batch and sequence.
Each model is also saved as a Hugging Face directory (config.json +
model.safetensors) with the same weights, so the directory frontend is checked
against onnxruntime running the exporter's file.

    pip install torch==2.13.0 transformers onnxscript && python tests/tools/export_test_models.py
"""

import os
import shutil

import torch
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel, RobertaConfig, RobertaModel

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")

# Widths that are not multiples of 16 or 64 on purpose.
MODELS = {
    "tiny_bert": (BertModel, BertConfig(vocab_size=320, hidden_size=96, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=200, max_position_embeddings=64)),
    "tiny_distilbert": (DistilBertModel, DistilBertConfig(vocab_size=320, dim=80, n_layers=2, n_heads=4,
                                                          hidden_dim=176, max_position_embeddings=64)),
    "tiny_roberta": (RobertaModel, RobertaConfig(vocab_size=320, hidden_size=96, num_hidden_layers=2,
                                                 num_attention_heads=4, intermediate_size=200,
                                                 max_position_embeddings=66)),
}


class WithTokenTypes(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids).last_hidden_state


class LastHiddenState(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export(name, model_class, config):
    torch.manual_seed(0)
    model = LastHiddenState(model_class(config).eval()).eval()
    ids = torch.randint(3, config.vocab_size, (2, 11))
    mask = torch.ones_like(ids)
    path = os.path.join(HERE, f"{name}.onnx")
    torch.onnx.export(model, (ids, mask), path, input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                    "attention_mask": {0: "batch", 1: "sequence"},
                                    "last_hidden_state": {0: "batch", 1: "sequence"}},
                      opset_version=17, dynamo=False)
    print(path, os.path.getsize(path))
    directory = os.path.join(HERE, name)
    shutil.rmtree(directory, ignore_errors=True)
    model.encoder.save_pretrained(directory, safe_serialization=True)
    for file in os.listdir(directory):
        if file not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(directory, file))
    print(directory, sorted(os.listdir(directory)))


def export_dynamo(name, model_class, config):
    """The torch.export-based exporter (needs onnxscript): other shape and attention subgraphs."""
    torch.manual_seed(0)
    model = LastHiddenState(model_class(config).eval()).eval()
    ids = torch.randint(3, config.vocab_size, (2, 11))
    mask = torch.ones_like(ids)
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence", max=60)}
    path = os.path.join(HERE, f"{name}_dynamo.onnx")
    torch.onnx.export(model, (ids, mask), path, input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state"], dynamic_shapes={"input_ids": dims, "attention_mask": dims},
                      dynamo=True, opset_version=18, external_data=False)
    print(path, os.path.getsize(path))


def export_static(name, model_class, config):
    """Batch and sequence fixed at export (1 x 16): constant shapes, and BERT's position ids a constant."""
    torch.manual_seed(0)
    model = LastHiddenState(model_class(config).eval()).eval()
    ids = torch.randint(3, config.vocab_size, (1, 16))
    path = os.path.join(HERE, f"{name}_static.onnx")
    torch.onnx.export(model, (ids, torch.ones_like(ids)), path, input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state"], opset_version=17, dynamo=False)
    print(path, os.path.getsize(path))


def export_token_types(name, model_class, config):
    """BERT taking token_type_ids as a third input, under graph input names of its own."""
    torch.manual_seed(0)
    model = WithTokenTypes(model_class(config).eval()).eval()
    ids = torch.randint(3, config.vocab_size, (2, 11))
    path = os.path.join(HERE, f"{name}_token_types.onnx")
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), path,
                      input_names=["ids", "mask", "segments"], output_names=["hidden"],
                      dynamic_axes={"ids": axes, "mask": axes, "segments": axes, "hidden": axes},
                      opset_version=17, dynamo=False)
    print(path, os.path.getsize(path))


if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    for name, (model_class, config) in MODELS.items():
        export(name, model_class, config)
        export_dynamo(name, model_class, config)
        if name != "tiny_distilbert":
            export_static(name, model_class, config)
    export_token_types("tiny_bert", *MODELS["tiny_bert"])
