"""torch modules: transformers' BERT-family encoders map their weights directly (no export);
any other module goes through torch.onnx.export with `example_inputs` and the ONNX frontend.
torch is imported only when a module is given."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from ..ir import Graph
from .hf import graph_from_config


def is_torch_module(model) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(model).__mro__)


def load_torch_module(module, example_inputs=None):
    """(IR graph, the ONNX model it came from or None when the weights were mapped directly)."""
    import torch

    if module.training:
        raise ValueError(f"{type(module).__name__} is in training mode (dropout on); call .eval() first")
    config = getattr(module, "config", None)
    if config is not None and getattr(config, "model_type", None) in ("bert", "roberta", "xlm-roberta",
                                                                      "camembert", "distilbert"):
        tensors = {name: t.detach().to(torch.float32).cpu().numpy() if t.is_floating_point() else t.cpu().numpy()
                   for name, t in module.state_dict().items()}
        settings = dict(config.to_dict(), _attn_implementation=getattr(config, "_attn_implementation", None))
        return graph_from_config(f"<torch {type(module).__name__}>", settings, tensors), None
    if example_inputs is None:
        raise ValueError(f"{type(module).__name__}: not a transformers BERT-family model; pass example_inputs "
                         "(a dict of input_ids, attention_mask, ...) so it can be exported to ONNX")
    return _through_onnx(module, example_inputs)


def _through_onnx(module, example_inputs):
    import onnx
    import torch

    from .onnx import load_onnx_graph

    if not isinstance(example_inputs, dict) or "input_ids" not in example_inputs:
        raise ValueError("example_inputs must be a dict with at least 'input_ids' (and 'attention_mask')")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example_inputs]
    args = tuple(torch.as_tensor(np.asarray(example_inputs[n])) for n in names)

    class Positional(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *tensors):
            out = self.inner(**dict(zip(names, tensors)))
            return out[0] if isinstance(out, (tuple, list)) else getattr(out, "last_hidden_state", out)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "module.onnx")
        axes = {0: "batch", 1: "sequence"}
        # The wrapper is put in eval mode too: the exporter restores the wrapper's mode afterwards,
        # and that would switch the user's module to training.
        torch.onnx.export(Positional(module).eval(), args, path, input_names=names,
                          output_names=["last_hidden_state"],
                          dynamic_axes={**{n: axes for n in names}, "last_hidden_state": axes},
                          opset_version=17, dynamo=False)
        proto = onnx.load(path)
    graph = load_onnx_graph(proto)
    graph.config["exported_from"] = type(module).__name__
    graph.source = f"<torch {type(module).__name__}>"
    return graph, proto
