"""m.save / sparsecpu.load / pickle: round trips give identical answers; damaged files give clear errors."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import sparsecpu as sc

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def inputs(rng, batch=3, seq=13):
    ids = rng.integers(3, 320, (batch, seq)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 9:] = 0
    mask[2] = 0  # padding only: what its attention gives is kept too
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="module")
def models():
    return {
        "fp32": sc.compile(os.path.join(DATA, "tiny_bert")),
        "int8 4x1": sc.compile(os.path.join(DATA, "tiny_roberta"), dtype="int8", pattern="4x1", sparsity=0.8),
        "int8": sc.compile(os.path.join(DATA, "tiny_bert"), dtype="int8"),
        "int8 2:4": sc.compile(os.path.join(DATA, "tiny_distilbert"), dtype="int8", pattern="2:4"),
        "bf16": sc.compile(os.path.join(DATA, "tiny_distilbert"), dtype="bf16"),
        "onnx 16x1": sc.compile(os.path.join(DATA, "tiny_bert_token_types.onnx"), pattern="16x1", sparsity=0.9),
    }


@pytest.mark.parametrize("name", ["fp32", "int8 4x1", "int8", "int8 2:4", "bf16", "onnx 16x1"])
def test_save_load_round_trip_is_exact(models, name, tmp_path, rng):
    m = models[name]
    path = tmp_path / "model.sparsecpu"
    m.save(path)
    loaded = sc.load(path)
    x = inputs(rng)
    for key, value in m(**x).items():
        np.testing.assert_array_equal(loaded(**x)[key], value)
    assert loaded.layers == m.layers
    assert loaded.dtype == m.dtype and loaded.output_name == m.output_name
    assert (loaded.prune_report is None) == (m.prune_report is None)


def test_sparse_weights_are_stored_sparse(models, tmp_path):
    models["onnx 16x1"].save(tmp_path / "sparse.bin")
    dense_weights = sum(layer["dense_bytes"] for layer in models["onnx 16x1"].layers)
    embeddings = 320 * 96 * 4 + 64 * 96 * 4 + 2 * 96 * 4
    assert os.path.getsize(tmp_path / "sparse.bin") < embeddings + 0.3 * dense_weights + 100_000


def test_int8_models_hold_and_store_int8_weights(models, tmp_path):
    """An int8 model keeps its dense layers as int8 values + scales, not the float weights: about
    a quarter of the float matrices in memory and on disk, and no re-quantization on load."""
    from sparsecpu.ir import QuantizedRows

    m = models["int8"]
    linears = m._graph.linears()
    assert all(isinstance(linear.weight, QuantizedRows) for linear in linears)
    held = sum(linear.weight.values.nbytes + linear.weight.scale.nbytes for linear in linears)
    dense_floats = sum(layer["dense_bytes"] for layer in m.layers)
    assert held <= 0.26 * dense_floats
    m.save(tmp_path / "int8.bin")
    embeddings = 320 * 96 * 4 + 64 * 96 * 4 + 2 * 96 * 4
    assert os.path.getsize(tmp_path / "int8.bin") < embeddings + 0.3 * dense_floats + 100_000


def test_pickle_round_trip(models, rng):
    m = models["int8 4x1"]
    clone = pickle.loads(pickle.dumps(m))
    x = inputs(rng)
    np.testing.assert_array_equal(clone(**x)["last_hidden_state"], m(**x)["last_hidden_state"])


def test_pickled_model_runs_in_another_process(models, tmp_path, rng):
    x = inputs(rng)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(models["fp32"]))
    np.savez(tmp_path / "x.npz", **x)
    code = ("import pickle, numpy as np, sys; m = pickle.load(open(sys.argv[1], 'rb')); "
            "x = dict(np.load(sys.argv[2])); np.save(sys.argv[3], m(**x)['last_hidden_state'])")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.pkl"), str(tmp_path / "x.npz"),
                    str(tmp_path / "y.npy")], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), models["fp32"](**x)["last_hidden_state"])


def test_damaged_files_give_clear_errors(models, tmp_path):
    path = tmp_path / "m.bin"
    models["fp32"].save(path)
    data = path.read_bytes()

    def load_bytes(blob, name):
        target = tmp_path / name
        target.write_bytes(blob)
        return sc.load(target)

    with pytest.raises(ValueError, match="not a sparsecpu model file"):
        load_bytes(b"PK\x03\x04 a zip file", "zip.bin")
    with pytest.raises(ValueError, match="not a sparsecpu model file"):
        load_bytes(b"", "empty.bin")
    with pytest.raises(ValueError, match="truncated"):
        load_bytes(data[: len(data) - 1000], "short.bin")
    with pytest.raises(ValueError, match="truncated"):
        load_bytes(data[:200], "header_only.bin")
    flipped = bytearray(data)
    flipped[-50] ^= 0xFF
    with pytest.raises(ValueError, match=r"corrupt \(tensor '.*' checksum mismatch\)"):
        load_bytes(bytes(flipped), "flipped.bin")
    flipped = bytearray(data)
    flipped[40] ^= 0x01
    with pytest.raises(ValueError, match=r"corrupt \(header checksum mismatch\)"):
        load_bytes(bytes(flipped), "header.bin")
    newer = bytearray(data)
    newer[16] = 9
    with pytest.raises(ValueError, match="format version 9; this sparsecpu reads version 1"):
        load_bytes(bytes(newer), "newer.bin")
    with pytest.raises(FileNotFoundError, match="absent.bin"):
        sc.load(tmp_path / "absent.bin")


def test_fuzzed_files_never_crash(models, tmp_path):
    """Random byte flips and cuts: a result or a ValueError, never a crash or another exception."""
    path = tmp_path / "m.bin"
    models["int8 4x1"].save(path)
    data = path.read_bytes()
    rng = np.random.default_rng(5)
    for trial in range(60):
        blob = bytearray(data)
        if trial % 3 == 0:
            blob = blob[: rng.integers(0, len(blob))]
        else:
            for _ in range(rng.integers(1, 8)):
                blob[rng.integers(0, len(blob))] = rng.integers(0, 256)
        try:
            sc.serialize.loads(bytes(blob), "fuzz")
        except ValueError:
            pass


def test_save_does_not_leave_partial_files(models, tmp_path):
    with pytest.raises(OSError):
        models["fp32"].save(tmp_path / "missing" / "m.bin")
    assert list(tmp_path.iterdir()) == []


def test_save_never_replaces_a_file_that_is_not_a_saved_model(models, tmp_path):
    source = tmp_path / "model.onnx"
    source.write_bytes(open(os.path.join(DATA, "tiny_bert.onnx"), "rb").read()[:5000])
    with pytest.raises(FileExistsError, match="model.onnx: exists and is not a sparsecpu model file; not overwritten"):
        models["fp32"].save(source)
    assert source.read_bytes() == open(os.path.join(DATA, "tiny_bert.onnx"), "rb").read()[:5000]
    saved = tmp_path / "model.sparsecpu"
    models["fp32"].save(saved)
    models["int8"].save(saved)  # a saved model is replaced
    assert sc.load(saved).dtype == "int8"
    with pytest.raises(IsADirectoryError, match="is a folder"):
        models["fp32"].save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.sparsecpu"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saved_files_get_the_permissions_open_would_give(models, tmp_path):
    old = os.umask(0o022)
    try:
        models["fp32"].save(tmp_path / "a.sparsecpu")
        models["fp32"].to_onnx(tmp_path / "a.onnx")
    finally:
        os.umask(old)
    assert oct((tmp_path / "a.sparsecpu").stat().st_mode & 0o777) == oct(0o644)
    assert oct((tmp_path / "a.onnx").stat().st_mode & 0o777) == oct(0o644)
    os.chmod(tmp_path / "a.sparsecpu", 0o600)
    models["fp32"].save(tmp_path / "a.sparsecpu")  # a replaced file keeps its own
    assert oct((tmp_path / "a.sparsecpu").stat().st_mode & 0o777) == oct(0o600)


def test_edited_headers_with_valid_checksums_give_clear_errors(models, tmp_path):
    """A header rewritten by hand (checksum recomputed): every field replaced by junk gives a result or a
    ValueError, never another exception."""
    import hashlib
    import json
    import struct

    from sparsecpu import serialize

    data = serialize.dumps(models["onnx 16x1"])
    magic = serialize.MAGIC
    version, header_len = struct.unpack_from("<IQ", data, len(magic))
    start = len(magic) + 12
    header = json.loads(data[start:start + header_len])
    body = data[start + header_len + 32:]

    def with_header(value):
        text = json.dumps(value).encode()
        return magic + struct.pack("<IQ", version, len(text)) + text + hashlib.sha256(text).digest() + body

    def paths(value, prefix=()):
        yield prefix
        if isinstance(value, dict):
            for key, item in value.items():
                yield from paths(item, prefix + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value[:3]):
                yield from paths(item, prefix + (i,))

    def replaced(value, path, junk):
        if not path:
            return junk
        value = json.loads(json.dumps(value))
        target = value
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = junk
        return value

    target = tmp_path / "edited.bin"
    outcomes = {"loaded": 0, "refused": 0}
    for path in list(paths(header)):
        for junk in (None, -1, "x", [], {}, [5]):
            target.write_bytes(with_header(replaced(header, path, junk)))
            try:
                sc.load(target)(input_ids=np.array([[5, 6, 7]]))
                outcomes["loaded"] += 1
            except ValueError:
                outcomes["refused"] += 1
    assert outcomes["refused"] > 100


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="POSIX permissions, not as root")
def test_a_read_only_target_is_not_replaced(models, tmp_path):
    target = tmp_path / "m.sparsecpu"
    models["fp32"].save(target)
    os.chmod(target, 0o444)
    with pytest.raises(PermissionError, match="not writable; not replaced"):
        models["int8"].save(target)
    assert sc.load(target).dtype == "fp32"
