"""The prepare stage, run as DVC runs it, on small generated raw folders shaped like the download stage's."""

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest

from filterlab.core import atomic
from filterlab.data import dataset, idx, raw
from helpers import load_stage


def _digits(count, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), (np.arange(count) % 10).astype(np.uint8)


def _remote_raw(directory, source="remote", url="https://example.org/mnist/"):
    """A raw folder as a download from a mirror leaves it: train and t10k files plus the manifest."""
    directory.mkdir(parents=True)
    files, arrays = {}, {}
    for split, count, seed in (("train", 60, 1), ("t10k", 20, 2)):
        arrays[split] = _digits(count, seed)
        for kind, array in zip(("images", "labels"), arrays[split], strict=True):
            payload = idx.gzip_bytes(idx.encode(array))
            (directory / idx.file_name(split, kind)).write_bytes(payload)
            files[idx.file_name(split, kind)] = {
                "sha256": hashlib.sha256(payload).hexdigest(),
                "bytes": len(payload),
                "url": url,
            }
    manifest = {
        "source": source,
        "url": url,
        "files": files,
        "counts": {"train": 60, "test": 20},
        "test_split": "t10k",
        "bundled_csv_sha256": None,
    }
    atomic.write_json(directory / "manifest.json", manifest)
    return arrays, manifest


@pytest.fixture
def run_prepare(tmp_path, params_file, capsys):
    """Run the stage in-process as DVC would; returns (exit code and stderr, npz path, metrics path)."""
    stage = load_stage("prepare")

    def run(raw, seed=7, name="run"):
        params = params_file({"seed": seed}, name=f"{name}.yaml")
        out, metrics = tmp_path / name / "mnist.npz", tmp_path / name / "data.json"
        code = stage.main(["--params", str(params), "--raw", str(raw), "--out", str(out), "--details", str(metrics)])
        return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err), out, metrics

    return run


def _rows(images):
    return {hashlib.sha256(image.tobytes()).hexdigest() for image in images}


def test_downloaded_data_keeps_t10k_as_test_and_splits_validation_from_train(tmp_path, run_prepare):
    arrays, manifest = _remote_raw(tmp_path / "raw")
    result, out, metrics = run_prepare(tmp_path / "raw")
    assert result.returncode == 0, result.stderr
    data = dataset.load_prepared(out)
    for split in ("train", "val", "test"):
        images, labels = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert images.dtype == np.float32 and images.shape[1:] == (28, 28, 1) and labels.dtype == np.int64
        assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(data.x_test, dataset.scale(arrays["t10k"][0]))
    np.testing.assert_array_equal(data.y_test, arrays["t10k"][1])
    # Train and val partition the training images: nothing lost, nothing shared.
    assert len(data.y_train) == 50 and np.bincount(data.y_val).tolist() == [1] * 10
    train_rows, val_rows = _rows(data.x_train), _rows(data.x_val)
    assert not train_rows & val_rows and train_rows | val_rows == _rows(dataset.scale(arrays["train"][0]))
    assert data.source == "remote" and data.raw_sha256 == dataset.raw_digest(manifest["files"])
    report = json.loads(metrics.read_text())
    assert report["source"] == "remote" and report["test_split"] == "t10k"
    assert report["counts"] == data.counts() and report["counts"]["test"]["total"] == 20


def test_bundled_data_gets_a_stratified_hold_out_and_says_so(tmp_path, run_prepare):
    images, labels = _digits(100, 3)
    manifest = raw.write_bundled(tmp_path / "raw", images, labels, "c" * 64)
    atomic.write_json(tmp_path / "raw" / "manifest.json", manifest)
    result, out, metrics = run_prepare(tmp_path / "raw")
    assert result.returncode == 0, result.stderr
    data = dataset.load_prepared(out)
    assert np.bincount(data.y_test).tolist() == [2] * 10
    assert np.bincount(data.y_val).tolist() == [1] * 10
    assert np.bincount(data.y_train).tolist() == [7] * 10
    assert not _rows(data.x_test) & (_rows(data.x_train) | _rows(data.x_val))
    report = json.loads(metrics.read_text())
    assert report["source"] == "bundled" and report["test_split"] == "stratified hold-out of train (0.2)"


def test_same_seed_same_split_other_seed_other_split(tmp_path, run_prepare):
    _remote_raw(tmp_path / "raw")
    splits = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        result, out, _ = run_prepare(tmp_path / "raw", seed=seed, name=name)
        assert result.returncode == 0, result.stderr
        splits[name] = dataset.load_prepared(out).x_val
    np.testing.assert_array_equal(splits["a"], splits["b"])
    assert _rows(splits["a"]) != _rows(splits["c"])


def test_a_mirror_download_is_named_in_the_dataset(tmp_path, run_prepare):
    _remote_raw(tmp_path / "raw", source="mirror", url="file:///srv/mnist/")
    result, out, _ = run_prepare(tmp_path / "raw")
    assert result.returncode == 0, result.stderr
    assert dataset.load_prepared(out).source == "mirror:file:///srv/mnist/"


@pytest.mark.parametrize("damage", ["changed after download", "truncated but listed"])
def test_damaged_raw_files_fail_with_one_line_naming_the_file(tmp_path, run_prepare, damage):
    _, manifest = _remote_raw(tmp_path / "raw")
    target = tmp_path / "raw" / "t10k-images-idx3-ubyte.gz"
    if damage == "changed after download":
        target.write_bytes(target.read_bytes()[:-10])
        expected = "t10k-images-idx3-ubyte.gz: does not match manifest.json"
    else:
        payload = idx.gzip_bytes(idx.encode(_digits(20, 2)[0])[:-28])
        target.write_bytes(payload)
        manifest["files"][target.name] = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
        atomic.write_json(tmp_path / "raw" / "manifest.json", manifest)
        expected = "t10k-images-idx3-ubyte.gz: truncated"
    result, out, metrics = run_prepare(tmp_path / "raw")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and expected in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and not metrics.exists()


def test_disk_full_while_writing_the_npz_is_one_line_and_keeps_the_old_one(tmp_path, run_prepare, monkeypatch):
    """ENOSPC injected at the write boundary (atomic.replacing's fsync): one line naming the npz."""
    import errno

    _remote_raw(tmp_path / "raw")
    result, out, _ = run_prepare(tmp_path / "raw")
    assert result.returncode == 0, result.stderr
    before = out.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    result, out, _ = run_prepare(tmp_path / "raw")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {out}: no space left on the device; free some space and re-run (the previous outputs are kept)"
    ], result.stderr
    assert out.read_bytes() == before and sorted(p.name for p in out.parent.iterdir()) == ["data.json", "mnist.npz"]
