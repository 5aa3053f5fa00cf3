"""Damaged and hostile model files: `netsharp.load` raises a NetsharpError, or loads the model
when the damage happened to be harmless, and lets no other exception escape.

A model file is a safetensors file: 8 bytes of little-endian header length, a JSON header (tensor
names -> dtype, shape, data offsets, plus `__metadata__` with netsharp's JSON document under
"netsharp"), then the tensor bytes. The cases damage each part: truncation at every offset,
random byte changes, header length, header JSON, the metadata document, the Net# program it
holds, and the tensors. Files are built byte by byte here, so no case depends on what the
safetensors writer accepts.

"""

from __future__ import annotations

import json
import random
import struct
import warnings

import numpy as np
import pytest

import netsharp
from netsharp import NetsharpError

TINY = "samples/tiny.ns"
DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
          "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_, "C64": np.complex64}
COMPLEX_WARNING = np.exceptions.ComplexWarning if hasattr(np, "exceptions") else \
    np.ComplexWarning  # numpy < 1.25


# ---- building files ----------------------------------------------------------------------------

def safetensors_bytes(tensors: dict[str, tuple[str, list, bytes]], metadata: dict | None,
                      extra_header: dict | None = None) -> bytes:
    """A safetensors file from (dtype, shape, raw bytes) per name, laid out contiguously."""
    header, body, offset = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        body += raw
        offset += len(raw)
    header.update(extra_header or {})
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + body


@pytest.fixture(scope="module")
def model():
    with open(TINY, encoding="utf-8") as handle:
        return netsharp.Model(netsharp.compile(handle.read(), path=TINY), seed=0)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("saved") / "tiny.safetensors"
    model.save(path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def meta(saved) -> dict:
    (length,) = struct.unpack("<Q", saved[:8])
    return json.loads(json.loads(saved[8:8 + length])["__metadata__"]["netsharp"])


def f32_tensors(model, **replace) -> dict:
    """The model's weights as (dtype, shape, bytes); `replace` swaps or drops (None) some."""
    tensors = {name: ("F32", list(value.shape), value.astype("<f4").tobytes())
               for name, value in model.params.items()}
    for name, tensor in replace.items():
        name = name.replace("__", ".")
        if tensor is None:
            tensors.pop(name)
        else:
            tensors[name] = tensor
    return tensors


def with_meta(model, meta: dict, **changes) -> bytes:
    """The model's file with some metadata fields changed (a value of ... removes the field)."""
    document = {**meta, **changes}
    document = {k: v for k, v in document.items() if v is not ...}
    return safetensors_bytes(f32_tensors(model), {"netsharp": json.dumps(document)})


# ---- loading -----------------------------------------------------------------------------------

def load_or_error(path):
    """The loaded Model, or the NetsharpError it raised; any other exception propagates."""
    try:
        return netsharp.load(path)
    except NetsharpError as error:
        str(error)                       # the message renders
        return error


def check_file(tmp_path, data: bytes, *, must_fail: bool, name: str = "model.safetensors"):
    path = tmp_path / name
    path.write_bytes(data)
    result = load_or_error(path)
    if must_fail:
        assert isinstance(result, NetsharpError), "a damaged file loaded"
    elif not isinstance(result, NetsharpError):
        assert_usable(result)
    return result


def assert_usable(model) -> None:
    """A model that loaded has the weights its network asks for."""
    for parameter in model.network.parameters:
        assert model.params[parameter.name].shape == tuple(parameter.shape)


def test_an_undamaged_file_loads(tmp_path, model, saved, meta):
    loaded = check_file(tmp_path, saved, must_fail=False)
    assert not isinstance(loaded, NetsharpError), loaded
    for name, value in model.params.items():
        np.testing.assert_array_equal(loaded.params[name], value)
    rebuilt = check_file(tmp_path, with_meta(model, meta), must_fail=False, name="rebuilt")
    assert not isinstance(rebuilt, NetsharpError), rebuilt   # the builder here is faithful


# ---- files that are not there, or empty --------------------------------------------------------

def test_missing_file_directory_and_empty_file(tmp_path):
    assert isinstance(load_or_error(tmp_path / "absent.safetensors"), NetsharpError)
    assert isinstance(load_or_error(tmp_path), NetsharpError)
    check_file(tmp_path, b"", must_fail=True)


# ---- byte-level damage -------------------------------------------------------------------------

def test_truncated_at_every_offset(tmp_path, saved):
    for length in range(len(saved)):
        path = tmp_path / "truncated"
        path.write_bytes(saved[:length])
        assert isinstance(load_or_error(path), NetsharpError), f"loaded at {length} bytes"


def mutate(rnd: random.Random, data: bytes) -> bytes:
    """1-8 bytes set to random values or with one bit flipped; sometimes a run inserted or cut."""
    data = bytearray(data)
    for _ in range(rnd.choice((1, 1, 2, 4, 8))):
        i = rnd.randrange(len(data))
        data[i] = rnd.randrange(256) if rnd.random() < 0.5 else data[i] ^ (1 << rnd.randrange(8))
    if rnd.random() < 0.1:
        i = rnd.randrange(len(data))
        data[i:i + rnd.randint(0, 8)] = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 8)))
    return bytes(data)


def test_random_byte_damage(tmp_path, saved):
    rnd = random.Random(20240611)
    failures = 0
    for _ in range(300):
        result = check_file(tmp_path, mutate(rnd, saved), must_fail=False)
        failures += isinstance(result, NetsharpError)
    assert failures > 100          # the damage is real: most files must be refused


def test_damage_inside_the_weights_is_harmless_or_refused(tmp_path, saved):
    """Bytes of the tensor data: any value is a float32, so the model loads (NaN included)."""
    (length,) = struct.unpack("<Q", saved[:8])
    for offset in range(8 + length, len(saved)):
        data = bytearray(saved)
        data[offset] ^= 0xFF
        check_file(tmp_path, bytes(data), must_fail=False)


# ---- the header --------------------------------------------------------------------------------

HEADER_LENGTHS = {            # the real length -> the length written
    "zero": lambda real, size: 0,
    "ten-short": lambda real, size: real - 10,
    "ten-long": lambda real, size: real + 10,
    "whole-file": lambda real, size: size - 8,
    "past-the-end": lambda real, size: size,
    "4-GiB": lambda real, size: 2**32,
    "2^63": lambda real, size: 2**63,
    "2^64-1": lambda real, size: 2**64 - 1,
}


@pytest.mark.parametrize("length", list(HEADER_LENGTHS.values()), ids=list(HEADER_LENGTHS))
def test_wrong_header_length(tmp_path, saved, length):
    (real,) = struct.unpack("<Q", saved[:8])
    data = struct.pack("<Q", length(real, len(saved))) + saved[8:]
    check_file(tmp_path, data, must_fail=True)


@pytest.mark.parametrize("text", [b"[]", b'"a string"', b"1", b"null", b"true", b"{", b"",
                                  b"{\xff\xfe}", b"[" * 100_000 + b"]" * 100_000,
                                  b'{"a":' * 20_000 + b"1" + b"}" * 20_000, b"{}",
                                  b'{"__metadata__": []}', b'{"__metadata__": {"netsharp": 5}}'],
                         ids=["list", "string", "number", "null", "true", "unclosed", "nothing",
                              "not-utf8", "deep-list", "deep-object", "empty-object",
                              "metadata-list", "metadata-number"])
def test_header_json_that_is_not_a_model(tmp_path, text):
    check_file(tmp_path, struct.pack("<Q", len(text)) + text, must_fail=True)


def test_header_with_tensor_bytes_out_of_range(tmp_path, model, meta):
    tensors = f32_tensors(model)
    bad = {"H.bias": {"dtype": "F32", "shape": [1], "data_offsets": [0, 10**12]}}
    data = safetensors_bytes(tensors, {"netsharp": json.dumps(meta)}, extra_header=bad)
    check_file(tmp_path, data, must_fail=True)


# ---- the metadata document ---------------------------------------------------------------------

def _raw_meta(text: str):
    return lambda model, meta: safetensors_bytes(f32_tensors(model), {"netsharp": text})


def _no_metadata(model, meta):
    return safetensors_bytes(f32_tensors(model), None)


def _other_metadata(model, meta):
    return safetensors_bytes(f32_tensors(model), {"author": "someone"})


def _meta(**changes):
    return lambda model, meta: with_meta(model, meta, **changes)


METADATA_CASES = {
    "no-metadata": _no_metadata,
    "other-metadata": _other_metadata,
    "not-json": _raw_meta("{not json"),
    "json-list": _raw_meta("[1, 2]"),
    "json-string": _raw_meta('"netsharp-model"'),
    "json-null": _raw_meta("null"),
    "deeply-nested-json": _raw_meta("[" * 100_000 + "]" * 100_000),
    "format-missing": _meta(format=...),
    "format-wrong": _meta(format="keras-model"),
    "version-missing": _meta(version=...),
    "version-future": _meta(version=99),
    "version-string": _meta(version="1"),
    "source-missing": _meta(source=...),
    "source-number": _meta(source=5),
    "source-bad-program": _meta(source="input X [3];\noutput Out [1] sigmoid from"),
    "source-other-network": _meta(source="input X [3];\noutput Out [2] from X all;"),
    "source-empty": _meta(source=""),
    "path-missing": _meta(path=...),
    "compile-missing": _meta(compile=...),
    "compile-list": _meta(compile=[3]),
    "compile-unknown-option": _meta(compile={"features": 3, "colour": "blue"}),
    "compile-features-string": _meta(compile={"features": "3", "task": "binary"}),
    "compile-wrong-features": _meta(compile={"features": 4, "task": "binary"}),
    "compile-task-unknown": _meta(compile={"features": 3, "task": "ranking"}),
    "seed-missing": _meta(seed=...),
    "seed-string": _meta(seed="zero"),
    "seed-negative": _meta(seed=-1),
    "history-number": _meta(history=5),
    "epochs-string": _meta(epochs_trained="many"),
    "optimizer-string": _meta(optimizer="adam"),
    "optimizer-unknown": _meta(optimizer={"name": "rmsprop-9000"}),
    "optimizer-no-name": _meta(optimizer={"lr": 0.1}),
    "optimizer-unknown-option": _meta(optimizer={"name": "sgd", "warp": 9}),
    "class-names-number": _meta(class_names=7),
    "training-state-string": _meta(training_state="resume"),
    "training-state-bad-rng": _meta(training_state={"rng": {"bit_generator": "MT19937"}}),
    "training-state-missing-slots": _meta(
        optimizer={"name": "adam"},
        training_state={"rng": np.random.default_rng(0).bit_generator.state,
                         "optimizer_steps": 3}),
    "training-state-bad-progress": _meta(
        training_state={"rng": np.random.default_rng(0).bit_generator.state,
                        "epoch_progress": {"nonsense": 1}}),
}


@pytest.mark.parametrize("build", list(METADATA_CASES.values()), ids=list(METADATA_CASES))
def test_damaged_metadata_is_refused(tmp_path, model, meta, build):
    check_file(tmp_path, build(model, meta), must_fail=True)


def test_hostile_source_asking_for_petabytes(tmp_path, model, meta):
    """A 1 kB file whose program declares 10^15 weights: refuse, don't try to allocate them.
    (4 PB lies beyond any address space, so the attempt fails at once, never swaps.)"""
    source = "input X [100000000];\noutput Out [10000000] from X all;"
    data = with_meta(model, meta, source=source, compile={"features": 100_000_000,
                                                          "task": "regression"})
    check_file(tmp_path, data, must_fail=True)


# ---- the tensors -------------------------------------------------------------------------------

def _tensor(dtype: str, shape: list, values) -> tuple[str, list, bytes]:
    little = np.dtype(DTYPES[dtype]).newbyteorder("<")
    return dtype, shape, np.asarray(values).astype(little).tobytes()


TENSOR_CASES = {
    "wrong-shape": {"H__X": _tensor("F32", [3, 1], [1, 2, 3])},
    "flat-shape": {"H__X": _tensor("F32", [3], [1, 2, 3])},
    "extra-dimension": {"H__X": _tensor("F32", [1, 3, 1], [1, 2, 3])},
    "scalar-bias": {"H__bias": _tensor("F32", [], 1.0)},
    "empty-tensor": {"H__X": _tensor("F32", [0, 3], [])},
    "missing-tensor": {"Out__bias": None},
    "unknown-tensor": {"Z__W": _tensor("F32", [2], [1, 2])},
    "complex-weights": {"H__X": _tensor("C64", [1, 3], [1 + 1j, 2, 3])},
    "bfloat16-weights": {"H__X": ("BF16", [1, 3], b"\x80\x3f" * 3)},
    "unknown-dtype": {"H__X": ("F128", [1, 3], b"\0" * 48)},
}


@pytest.mark.parametrize("replace", list(TENSOR_CASES.values()), ids=list(TENSOR_CASES))
def test_wrong_tensors_are_refused(tmp_path, model, meta, replace):
    data = safetensors_bytes(f32_tensors(model, **replace), {"netsharp": json.dumps(meta)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", COMPLEX_WARNING)
        check_file(tmp_path, data, must_fail=True)


@pytest.mark.parametrize("dtype", ["F64", "F16", "I32", "BOOL"])
def test_other_numeric_dtypes_load_with_their_values_or_are_refused(tmp_path, model, meta, dtype):
    """Not what netsharp writes, but exactly representable: loading them is harmless."""
    values = [0.5, -1.0, 2.0]
    if dtype in ("I32", "BOOL"):
        values = [1, -1, 2] if dtype == "I32" else [True, False, True]
    replace = {"H__X": _tensor(dtype, [1, 3], values)}
    data = safetensors_bytes(f32_tensors(model, **replace), {"netsharp": json.dumps(meta)})
    result = check_file(tmp_path, data, must_fail=False)
    if not isinstance(result, NetsharpError):
        np.testing.assert_array_equal(result.params["H.X"], [values])
