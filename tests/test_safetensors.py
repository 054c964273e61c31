"""Tests for the stdlib safetensors reader/writer, cross-checked against the
reference ``safetensors`` library where it is installed."""

import array
import json
import os
import struct

import pytest

from neuroscope.errors import ModelFormatError
from neuroscope.safetensors_format import (
    DTYPE_SIZES,
    SafetensorsFile,
    ShardedSafetensors,
    TensorInfo,
    save_bytes,
    save_file,
)


def _raw_file(path, header, data=b"", header_bytes=None):
    """Write a file with a hand-made (possibly broken) header."""
    if header_bytes is None:
        header_bytes = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
    return path


def _f32(*values):
    return array.array("f", values).tobytes()


# --- reading what the reference library writes ------------------------------

def test_reads_numpy_written_file(tmp_path):
    np = pytest.importorskip("numpy")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(0)
    tensors = {
        "f32": rng.standard_normal((2, 3)).astype(np.float32),
        "f32_empty": np.zeros((0, 4), np.float32),
        "f16": rng.standard_normal((5,)).astype(np.float16),
        "f64": rng.standard_normal((4, 1)),
        "f64_scalar": np.array(3.25),
        "i64": np.array([-(2**62), -1, 0, 2**62], np.int64),
        "i64_scalar": np.array(7, np.int64),
        "i32": np.arange(-6, 6, dtype=np.int32).reshape(2, 2, 3),
        "i32_empty": np.zeros((0,), np.int32),
        "i16": np.array([-32768, 32767], np.int16),
        "i8": np.array([[-128], [127]], np.int8),
        "u8": np.arange(8, dtype=np.uint8).reshape(2, 2, 2),
        "u8_scalar": np.array(255, np.uint8),
        "u16": np.array([0, 65535], np.uint16),
        "u32": np.array([[2**32 - 1]], np.uint32),
        "u64": np.array([2**64 - 1, 1], np.uint64),
        "bool": np.array([True, False, True]),
    }
    path = tmp_path / "ref.safetensors"
    safetensors_numpy.save_file(tensors, str(path), metadata={"format": "np"})

    with SafetensorsFile.open(path) as st:
        assert sorted(st.keys()) == sorted(tensors)
        assert len(st) == len(tensors) and "f32" in st and "nope" not in st
        assert st.metadata == {"format": "np"}
        for name, expected in tensors.items():
            info = st.info(name)
            assert info.shape == expected.shape, name
            assert info.nbytes == expected.nbytes, name
            assert bytes(st.raw(name)) == expected.tobytes(), name
            assert st.to_list(name) == expected.tolist(), name
            floats = np.array(st.to_float_array(name), dtype=np.float32)
            np.testing.assert_array_equal(
                floats, expected.astype(np.float32).ravel(), err_msg=name)
            if expected.dtype.kind in "iub":
                ints = st.to_int_array(name)
                assert ints.itemsize == expected.itemsize, name
                np.testing.assert_array_equal(np.array(ints), expected.ravel())


def test_f16_special_values_match_numpy(tmp_path):
    np = pytest.importorskip("numpy")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    values = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 6e-8, 6.1e-5,
                       np.inf, -np.inf, np.nan], np.float16)
    path = tmp_path / "f16.safetensors"
    safetensors_numpy.save_file({"x": values}, str(path))
    with SafetensorsFile.open(path) as st:
        ours = np.array(st.to_float_array("x"), np.float32)
    assert ours.view(np.uint32).tolist() == \
        values.astype(np.float32).view(np.uint32).tolist()


def test_reads_torch_written_file(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    specials = torch.tensor([0.0, -0.0, 1e-40, 3e38, float("inf"),
                             float("-inf"), float("nan")])
    tensors = {
        "bf16": torch.randn(3, 4).to(torch.bfloat16),
        "bf16_specials": specials.to(torch.bfloat16),
        "bf16_scalar": torch.tensor(1.5, dtype=torch.bfloat16),
        "f16": torch.randn(2, 2, 2).to(torch.float16),
        "f32": torch.randn(7),
        "f32_empty": torch.zeros(2, 0),
    }
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(tensors, str(path), metadata={"a": "b"})
    with SafetensorsFile.open(path) as st:
        assert st.metadata == {"a": "b"}
        for name, expected in tensors.items():
            info = st.info(name)
            assert info.shape == tuple(expected.shape), name
            ours = array.array("I", st.to_float_array(name).tobytes())
            reference = expected.float().contiguous().view(torch.int32)
            assert list(ours) == [v & 0xFFFFFFFF for v in reference.flatten().tolist()], name


# --- writing what the reference library reads --------------------------------

def test_written_file_loads_in_reference_library(tmp_path):
    np = pytest.importorskip("numpy")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    expected = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        "h": np.array([1.5, -2.0], np.float16),
        "d": np.array(2.0**-30),
        "ids": np.array([[1, 2], [3, 4]], np.int64),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 2), np.int32),
        "b": np.array([0, 255], np.uint8),
        "tête.ß": np.array([1], np.uint8),  # non-ASCII names stay raw UTF-8, as in the reference
    }
    dtypes = {"float32": "F32", "float16": "F16", "float64": "F64", "int64": "I64",
              "bool": "BOOL", "int32": "I32", "uint8": "U8"}
    ours = {name: (dtypes[value.dtype.name], value.shape, value.tobytes())
            for name, value in expected.items()}
    path = tmp_path / "ours.safetensors"
    save_file(ours, path, metadata={"source": "neuroscope"})

    loaded = safetensors_numpy.load_file(str(path))
    assert sorted(loaded) == sorted(expected)
    for name, value in expected.items():
        assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape
        np.testing.assert_array_equal(loaded[name], value)
    with safe_open(str(path), framework="np") as handle:
        assert handle.metadata() == {"source": "neuroscope"}

    # Same layout rules as the reference writer, so the bytes are identical.
    assert path.read_bytes() == safetensors_numpy.save(
        expected, metadata={"source": "neuroscope"})
    assert save_bytes(ours, metadata={"source": "neuroscope"}) == path.read_bytes()


def test_written_bf16_loads_in_torch(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    values = torch.randn(4, 3).to(torch.bfloat16)
    raw = values.view(torch.int16).numpy().tobytes()
    path = tmp_path / "bf16.safetensors"
    save_file({"x": ("BF16", (4, 3), raw)}, path)
    assert torch.equal(safetensors_torch.load_file(str(path))["x"], values)


def test_round_trip_from_buffer():
    data = save_bytes({
        "a": ("F32", (2,), _f32(1.0, -0.5)),
        "s": ("I64", (), struct.pack("<q", -3)),
        "e": ("U8", (0, 3), b""),
    }, metadata={"k": "v"})
    header_len = struct.unpack("<Q", data[:8])[0]
    assert header_len % 8 == 0
    for buffer in (data, bytearray(data), memoryview(data)):
        st = SafetensorsFile.from_buffer(buffer)
        assert st.name == "<buffer>" and st.metadata == {"k": "v"}
        assert list(st.to_float_array("a")) == [1.0, -0.5]
        assert st.to_list("s") == -3 and st.to_list("e") == []
        assert st.info("e") == TensorInfo("e", "U8", (0, 3), st.info("e").begin,
                                          st.info("e").begin)
        assert isinstance(st.raw("a"), memoryview)


def test_raw_is_zero_copy_and_close_with_live_views(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"a": ("F32", (3,), _f32(1, 2, 3))}, path)
    st = SafetensorsFile.open(path)
    view = st.raw("a")
    assert view.readonly and view.nbytes == 12
    st.close()  # must not raise although `view` still points into the map
    assert bytes(view) == _f32(1, 2, 3)
    with pytest.raises(ValueError, match="closed"):
        st.raw("a")
    st.close()


def _mapped_rss_kib(path):
    """Resident KiB of this process's mappings of ``path`` (Linux /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(head[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads /proc/self/smaps (Linux)")
def test_release_hands_mapped_pages_back_and_rereads_the_same_bytes(tmp_path):
    rows = 4096  # 2 tensors of 4 MiB: far more pages than a boundary page or two
    values = [array.array("f", [float(i * 3 + j) for j in range(256)]) * 4 for i in range(2)]
    tensors = {f"t{i}": ("F32", (rows, 256), v.tobytes() * (rows // 4)) for i, v in enumerate(values)}
    path = tmp_path / "big.safetensors"
    save_file(tensors, path)
    with SafetensorsFile.open(path) as st:
        for name in st.keys():
            copied = bytes(st.raw(name))  # touch every page, as a loader's copy does
        assert _mapped_rss_kib(path) >= 8 * 1024 - 64
        for name in st.keys():
            st.release(name)
        assert _mapped_rss_kib(path) <= 64  # at most a boundary page or two
        assert bytes(st.raw("t1")) == copied == tensors["t1"][2]  # faulted back in, unchanged
        assert bytes(st.raw("t0")) == tensors["t0"][2]


def test_release_without_a_map_is_harmless():
    st = SafetensorsFile.from_buffer(save_bytes({"a": ("F32", (2,), _f32(1, 2))}))
    st.release("a")
    assert list(st.to_float_array("a")) == [1.0, 2.0]
    with pytest.raises(ModelFormatError, match="'b'"):
        st.release("b")


def test_open_without_mmap_reads_whole_file(tmp_path, monkeypatch):
    from neuroscope import safetensors_format as module

    path = tmp_path / "plain.safetensors"
    save_file({"a": ("F32", (2,), _f32(1, 2))}, path)
    monkeypatch.setattr(module, "mmap", None)  # as in Pyodide builds without mmap
    with SafetensorsFile.open(path) as st:
        assert list(st.to_float_array("a")) == [1.0, 2.0]


def test_to_int_array_rejects_floats():
    st = SafetensorsFile.from_buffer(save_bytes({"a": ("F32", (1,), _f32(1))}))
    with pytest.raises(ModelFormatError, match=r"'a'.*F32.*integer"):
        st.to_int_array("a")


def test_dtype_sizes_cover_required_dtypes():
    for dtype in ("F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"):
        assert dtype in DTYPE_SIZES


# --- malformed files ---------------------------------------------------------

def _entry(dtype="F32", shape=(1,), offsets=(0, 4)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


BAD_HEADERS = [
    ("missing", {"t": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "data_offsets"),
    ("dtype_type", {"t": _entry(dtype=5)}, b"\0" * 4, "unknown dtype 5"),
    ("unknown_dtype", {"t": _entry(dtype="Q4")}, b"\0" * 4, r"'Q4'.*BF16"),
    ("shape_type", {"t": _entry(shape="ab")}, b"\0" * 4, "shape"),
    ("shape_bool", {"t": {**_entry(), "shape": [True]}}, b"\0" * 4, "shape"),
    ("negative_dim", {"t": _entry(shape=(-1,))}, b"\0" * 4, r"negative.*\[-1\]"),
    ("offsets_len", {"t": {**_entry(), "data_offsets": [0]}}, b"\0" * 4, r"\[0\]"),
    ("end_before_begin", {"t": _entry(offsets=(4, 0))}, b"\0" * 4, "end 0 < begin 4"),
    ("truncated", {"t": _entry(shape=(4,), offsets=(0, 16))}, b"\0" * 4,
     r"ends at byte \d+ but the file has \d+ bytes.*truncated"),
    ("size_mismatch", {"t": _entry(shape=(2,), offsets=(0, 4))}, b"\0" * 8,
     r"4 bytes of data.*\[2\] of F32 needs 8"),
    ("not_object", {"t": [1, 2]}, b"", "expected an object"),
]


@pytest.mark.parametrize("case, header, data, pattern", BAD_HEADERS,
                         ids=[case[0] for case in BAD_HEADERS])
def test_bad_entry_names_file_and_tensor(tmp_path, case, header, data, pattern):
    path = _raw_file(tmp_path / f"{case}.safetensors", header, data)
    with pytest.raises(ModelFormatError, match=pattern) as caught:
        SafetensorsFile.open(path)
    message = str(caught.value)
    assert path.name in message and "'t'" in message


def test_overlap_names_both_tensors(tmp_path):
    header = {"first": _entry(shape=(2,), offsets=(0, 8)),
              "second": _entry(shape=(1,), offsets=(4, 8)),
              "empty": _entry(shape=(0,), offsets=(4, 4))}
    path = _raw_file(tmp_path / "overlap.safetensors", header, b"\0" * 8)
    with pytest.raises(ModelFormatError, match=r"'first'.*'second'.*overlap") as caught:
        SafetensorsFile.open(path)
    assert path.name in str(caught.value)


@pytest.mark.parametrize("contents, pattern", [
    (b"", "0 bytes, expected at least 8"),
    (b"\x05\0\0", "3 bytes"),
    (struct.pack("<Q", 200_000_000) + b"{}", "over the 100000000-byte limit"),
    (struct.pack("<Q", 64) + b"{}", r"needs 72 bytes, file has 10"),
    (struct.pack("<Q", 2) + b"\xff\xfe", "not UTF-8"),
    (struct.pack("<Q", 5) + b"{nope", "not valid JSON"),
    (struct.pack("<Q", 6) + b"[1, 2]", "JSON list, expected an object"),
    (struct.pack("<Q", 31) + b'{"__metadata__": {"a": 1}}     ', "__metadata__"),
    (struct.pack("<Q", 16) + b'{"a": 1, "a": 2}', "key 'a' twice"),
], ids=["empty", "short", "absurd", "past_end", "utf8", "json", "list",
        "metadata", "duplicate"])
def test_bad_file_names_file(tmp_path, contents, pattern):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(contents)
    with pytest.raises(ModelFormatError, match=pattern) as caught:
        SafetensorsFile.open(path)
    assert "broken.safetensors" in str(caught.value)


def test_missing_tensor_suggests_close_names():
    st = SafetensorsFile.from_buffer(save_bytes({
        "h.0.attn.weight": ("F32", (1,), _f32(0)),
        "h.0.mlp.weight": ("F32", (1,), _f32(0)),
    }), name="gpt2.safetensors")
    with pytest.raises(ModelFormatError) as caught:
        st.info("h.0.attn.weigth")
    message = str(caught.value)
    assert "gpt2.safetensors" in message and "'h.0.attn.weigth'" in message
    assert "h.0.attn.weight" in message
    with pytest.raises(ModelFormatError, match=r"2 tensors, nearest: h\.0\.attn\.weight"):
        st.raw("zzz")


@pytest.mark.parametrize("tensors, pattern", [
    ({"a": ("F32", (3,), _f32(1, 2))}, r"'a'.*8 bytes.*\[3\] of F32 needs 12"),
    ({"a": ("F8", (1,), b"\0")}, r"'a'.*unknown dtype 'F8'.*BF16"),
    ({"a": ("U8", (-1,), b"")}, r"'a'.*\[-1\] has a negative"),
    ({"__metadata__": ("U8", (0,), b"")}, "invalid name"),
])
def test_writer_validates(tensors, pattern):
    with pytest.raises(ModelFormatError, match=pattern):
        save_bytes(tensors)
    with pytest.raises(ModelFormatError, match="metadata"):
        save_bytes({}, metadata={"a": 1})


# --- sharded checkpoints -----------------------------------------------------

def _write_sharded(tmp_path, weight_map=None):
    save_file({"wte": ("F32", (2,), _f32(1, 2)), "ln.b": ("BF16", (1,), b"\x80\x3f")},
              tmp_path / "model-00001-of-00002.safetensors")
    save_file({"lm_head": ("F32", (1, 1), _f32(5)), "pos": ("I64", (1,),
                                                          struct.pack("<q", 9))},
              tmp_path / "model-00002-of-00002.safetensors")
    if weight_map is None:
        weight_map = {"wte": "model-00001-of-00002.safetensors",
                      "ln.b": "model-00001-of-00002.safetensors",
                      "lm_head": "model-00002-of-00002.safetensors",
                      "pos": "model-00002-of-00002.safetensors"}
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 24},
                                 "weight_map": weight_map}))
    return index


def test_sharded_reads_across_shards(tmp_path):
    index = _write_sharded(tmp_path)
    with ShardedSafetensors.open(index) as model:
        assert model.keys() == ["wte", "ln.b", "lm_head", "pos"]
        assert len(model) == 4 and "pos" in model and "nope" not in model
        assert model.metadata == {"total_size": 24}
        assert list(model.to_float_array("wte")) == [1.0, 2.0]
        assert list(model.to_float_array("ln.b")) == [1.0]
        assert model.to_list("lm_head") == [[5.0]]
        assert list(model.to_int_array("pos")) == [9]
        assert model.info("lm_head").shape == (1, 1)
        assert bytes(model.raw("wte")) == _f32(1, 2)
        with pytest.raises(ModelFormatError, match=r"index\.json.*'wtf'.*wte"):
            model.info("wtf")


def test_sharded_opens_shards_lazily(tmp_path):
    index = _write_sharded(tmp_path)
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"garbage!!")
    model = ShardedSafetensors.open(index)
    assert list(model.to_float_array("wte")) == [1.0, 2.0]
    with pytest.raises(ModelFormatError, match="model-00002-of-00002"):
        model.info("pos")


def test_sharded_bad_index(tmp_path):
    index = tmp_path / "model.safetensors.index.json"
    index.write_text("{not json")
    with pytest.raises(ModelFormatError, match=r"index\.json.*not valid JSON"):
        ShardedSafetensors.open(index)
    index.write_text(json.dumps({"metadata": {}}))
    with pytest.raises(ModelFormatError, match=r"index\.json.*weight_map"):
        ShardedSafetensors.open(index)

    index = _write_sharded(tmp_path, {"wte": "model-00001-of-00002.safetensors",
                                      "x": "model-00009-of-00009.safetensors"})
    with pytest.raises(ModelFormatError,
                       match=r"index\.json.*'model-00009-of-00009.*'x'.*not found"):
        ShardedSafetensors.open(index)

    index = _write_sharded(tmp_path, {"pos": "model-00001-of-00002.safetensors"})
    model = ShardedSafetensors.open(index)
    with pytest.raises(ModelFormatError,
                       match=r"index\.json.*'pos'.*model-00001-of-00002.*does not contain"):
        model.info("pos")
