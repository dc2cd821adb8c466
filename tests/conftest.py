import os
import subprocess
import sys

import numpy as np
import pytest

# The tests expect bf16-product kernels wherever the ISA level has AVX512-BF16,
# whatever a timing probe would choose on the machine (the probe itself is tested
# in test_cpu_and_threads.py, in subprocesses).
os.environ.setdefault("SPARSECPU_BF16_PRODUCTS", "on")

import sparsecpu as sc  # noqa: E402

ISA_ORDER = ["ref", "avx2", "avx2_vnni", "avx512", "avx512_vnni", "avx512_bf16"]


def isa_rank(name: str) -> int:
    return ISA_ORDER.index(name)


def kernel_isa(kernel_name: str) -> str:
    """Kernel names end with their ISA level."""
    for level in sorted(ISA_ORDER, key=len, reverse=True):
        if kernel_name.endswith("_" + level):
            return level
    raise AssertionError(f"kernel name {kernel_name!r} does not end with an ISA level")


def run_python(code: str, **env_overrides) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def cpu():
    return sc.cpu_info()
