"""Frontends: turn a model given by the user into the encoder IR (sparsecpu.ir)."""
