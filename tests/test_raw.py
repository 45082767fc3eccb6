"""filterlab.data.raw: the bundled digits as deterministic IDX files.

`obtain` itself (mirrors, fallback, MNIST_MIRROR) is tested with the loopback mirrors in test_download.py.
"""

import numpy as np

from filterlab.data import idx, raw


def test_bundled_digits_become_train_idx_files_with_a_manifest(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20, dtype=np.uint8) % 10
    manifest = raw.write_bundled(tmp_path / "a", images, labels, "c" * 64)
    again = raw.write_bundled(tmp_path / "b", images, labels, "c" * 64)
    assert manifest == again
    for name in manifest["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    read_images, read_labels = idx.read_split(tmp_path / "a", "train")
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)
    assert manifest["source"] == "bundled" and manifest["counts"] == {"train": 20, "test": None}
    assert manifest["test_split"] == raw.TEST_SPLIT_HOLDOUT and manifest["bundled_csv_sha256"] == "c" * 64
    assert sorted(manifest["files"]) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
