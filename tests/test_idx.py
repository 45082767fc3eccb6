"""filterlab.data.idx: round trips on generated IDX files, and clear errors for damaged ones."""

import gzip
import struct

import numpy as np
import pytest

from filterlab.core.errors import DataError
from filterlab.data import idx


def _digits(count=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=count, dtype=np.uint8)


def _write_split(directory, split, images, labels, compress=True):
    for kind, array in (("images", images), ("labels", labels)):
        payload = idx.encode(array)
        (directory / idx.file_name(split, kind)).write_bytes(idx.gzip_bytes(payload) if compress else payload)


def test_round_trip_through_gzip_files(tmp_path):
    images, labels = _digits()
    _write_split(tmp_path, "train", images, labels)
    read_images, read_labels = idx.read_split(tmp_path, "train")
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)
    assert read_images.dtype == np.uint8 and read_images.shape == (12, 28, 28)
    assert idx.item_count(tmp_path / idx.file_name("train", "images")) == 12


def test_plain_uncompressed_file_reads_too(tmp_path):
    images, _ = _digits(3)
    path = tmp_path / "images.idx3"
    path.write_bytes(idx.encode(images))
    np.testing.assert_array_equal(idx.read_images(path), images)


def test_header_layout_matches_the_mnist_spec():
    images, labels = _digits(2)
    assert struct.unpack(">IIII", idx.encode(images)[:16]) == (0x803, 2, 28, 28)
    assert struct.unpack(">II", idx.encode(labels)[:8]) == (0x801, 2)


def test_gzip_is_deterministic():
    images, _ = _digits()
    first, second = idx.gzip_bytes(idx.encode(images)), idx.gzip_bytes(idx.encode(images))
    assert first == second
    assert first[4:8] == b"\0\0\0\0"  # gzip mtime field


def test_truncated_payload_names_the_file(tmp_path):
    images, _ = _digits()
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(idx.gzip_bytes(idx.encode(images)[:-100]))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: truncated"):
        idx.read_images(path)


def test_truncated_gzip_stream_is_a_data_error(tmp_path):
    images, _ = _digits()
    compressed = idx.gzip_bytes(idx.encode(images))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DataError, match=r"cut\.gz: not a readable gzip file"):
        idx.read_images(path)


def test_corrupt_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "page.gz"
    path.write_bytes(b"<html><body>404 Not Found</body></html>")
    with pytest.raises(DataError, match=r"page\.gz: not a readable gzip file"):
        idx.read_labels(path)


def test_wrong_magic_number_is_named(tmp_path):
    _, labels = _digits()
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx.encode(labels)))
    with pytest.raises(DataError, match="magic number 0x00000801, expected 0x00000803"):
        idx.read_images(path)


def test_trailing_bytes_are_refused(tmp_path):
    _, labels = _digits()
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx.encode(labels) + b"\0"))
    with pytest.raises(DataError, match="trailing bytes"):
        idx.read_labels(path)


def test_wrong_image_size_and_bad_labels_are_refused(tmp_path):
    small = tmp_path / "small.gz"
    small.write_bytes(gzip.compress(idx.encode(np.zeros((2, 8, 8), np.uint8))))
    with pytest.raises(DataError, match="8x8, expected 28x28"):
        idx.read_images(small)
    bad = tmp_path / "bad-labels.gz"
    bad.write_bytes(gzip.compress(idx.encode(np.array([1, 12], np.uint8))))
    with pytest.raises(DataError, match="label 12 is not a digit"):
        idx.read_labels(bad)


def test_image_and_label_counts_must_agree(tmp_path):
    images, labels = _digits(5)
    _write_split(tmp_path, "t10k", images, labels[:4])
    with pytest.raises(DataError, match="5 images but t10k-labels-idx1-ubyte.gz has 4 labels"):
        idx.read_split(tmp_path, "t10k")


def test_missing_file_and_short_header(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        idx.read_images(tmp_path / "absent.gz")
    stub = tmp_path / "stub.gz"
    stub.write_bytes(gzip.compress(b"\0\0\x08"))
    with pytest.raises(DataError, match="truncated IDX header"):
        idx.read_images(stub)


def test_encode_refuses_what_idx_cannot_hold():
    with pytest.raises(ValueError, match="uint8"):
        idx.encode(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match="shape"):
        idx.encode(np.zeros((2, 2), np.uint8))


def test_dimensions_whose_product_overflows_int64_are_one_dataerror():
    """2**32 - 1 rows and columns: their product with the count wraps an int64, never a Python integer."""
    import struct

    from filterlab.core.errors import DataError

    data = struct.pack(">IIII", idx.IMAGES_MAGIC, 3_000_000, 2**32 - 1, 2**32 - 1) + bytes(64)
    with pytest.raises(DataError, match="truncated: 80 bytes for shape"):
        idx.decode(data, idx.IMAGES_MAGIC, "forged")
