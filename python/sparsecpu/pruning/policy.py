"""Pruning defaults and errors, importable without onnx or torch."""

# Linear layers narrower than this (in or out) stay dense unless included explicitly.
MIN_WIDTH = 64


class PruneError(ValueError):
    """A problem with the arguments (usage=True) or with the model, named in the message."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage
