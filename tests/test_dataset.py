"""filterlab.data.dataset: stratified splits, scaling, the raw manifest check and the npz round trip."""

import hashlib
import json

import numpy as np
import pytest

from filterlab.core import atomic
from filterlab.core.errors import DataError
from filterlab.data import dataset


def test_stratified_split_holds_out_each_class_in_proportion():
    labels = np.repeat(np.arange(10), [50, 40, 30, 20, 10, 50, 40, 30, 20, 10])
    kept, held = dataset.stratified_split(labels, 0.2, seed=3)
    assert np.bincount(labels[held]).tolist() == [10, 8, 6, 4, 2, 10, 8, 6, 4, 2]
    assert np.intersect1d(kept, held).size == 0 and np.union1d(kept, held).tolist() == list(range(labels.size))
    again, _ = dataset.stratified_split(labels, 0.2, seed=3)
    other, _ = dataset.stratified_split(labels, 0.2, seed=4)
    np.testing.assert_array_equal(kept, again)
    assert not np.array_equal(kept, other)


def test_stratified_split_refuses_a_class_too_small_to_split():
    with pytest.raises(DataError, match="class 1 has 1 images"):
        dataset.stratified_split(np.array([0, 0, 0, 1]), 0.5, seed=0)


def test_scale_maps_bytes_to_unit_floats_with_a_channel():
    scaled = dataset.scale(np.array([[[0, 255], [51, 102]]], dtype=np.uint8))
    assert scaled.dtype == np.float32 and scaled.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(scaled[0, :, :, 0], [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)


def test_split_and_scale_without_test_set_holds_one_out_first():
    images = np.arange(40, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    labels = np.arange(40, dtype=np.uint8) % 2
    data = dataset.split_and_scale(
        (images, labels), None, val_fraction=0.1, test_fraction=0.25, seed=5, source="bundled", raw_sha256="f" * 64
    )
    assert [data.counts()[split]["total"] for split in dataset.SPLITS] == [26, 4, 10]
    ids = [set(np.rint(getattr(data, f"x_{split}")[:, 0, 0, 0] * 255).astype(int)) for split in dataset.SPLITS]
    assert set.union(*ids) == set(range(40)) and sum(len(part) for part in ids) == 40
    assert data.y_train.dtype == np.int64 and data.source == "bundled"


def test_raw_digest_depends_on_every_file_digest_not_on_order():
    files = {"b": {"sha256": "2" * 64}, "a": {"sha256": "1" * 64}}
    digest = dataset.raw_digest(files)
    assert digest == dataset.raw_digest(dict(reversed(list(files.items()))))
    assert digest != dataset.raw_digest({**files, "b": {"sha256": "3" * 64}})
    assert len(digest) == 64


def _raw(tmp_path, **override):
    payload = b"raw bytes"
    (tmp_path / "file.gz").write_bytes(payload)
    manifest = {
        "source": "remote",
        "url": None,
        "test_split": "t10k",
        "files": {"file.gz": {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}},
    }
    manifest.update(override)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_load_manifest_checks_the_files_it_lists(tmp_path):
    manifest = _raw(tmp_path)
    assert dataset.load_manifest(tmp_path) == manifest
    (tmp_path / "file.gz").write_bytes(b"raw bytez")
    with pytest.raises(DataError, match=r"file\.gz: does not match manifest\.json"):
        dataset.load_manifest(tmp_path)
    (tmp_path / "file.gz").unlink()
    with pytest.raises(DataError, match="listed in manifest.json but missing"):
        dataset.load_manifest(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found; run `dvc repro download`"),
        ("{not json", "not valid JSON"),
        ('{"source": "remote"}', "missing files, test_split, url"),
        ('{"source": "ftp", "url": null, "files": {}, "test_split": "t10k"}', "unknown source 'ftp'"),
        ('{"source": "remote", "url": null, "files": [], "test_split": "t10k"}', "`files` must map each raw file"),
        ('{"source": "remote", "url": null, "files": {"a.gz": {"sha256": "x"}}, "test_split": "t10k"}', "'a.gz' lacks"),
        ('{"source": "remote", "url": null, "files": {"a.gz": 7}, "test_split": "t10k"}', "'a.gz' lacks `bytes`"),
        (b'{"source": "\xe9"}', "not valid JSON"),
    ],
)
def test_load_manifest_refuses_bad_manifests(tmp_path, content, message):
    if isinstance(content, bytes):
        (tmp_path / "manifest.json").write_bytes(content)  # not UTF-8
    elif content is not None:
        (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        dataset.load_manifest(tmp_path)


def test_prepared_round_trip_without_pickle(tmp_path, tiny_prepared):
    path = tmp_path / "mnist.npz"
    dataset.save_prepared(path, tiny_prepared)
    loaded = dataset.load_prepared(path)
    for split in dataset.SPLITS:
        np.testing.assert_array_equal(getattr(loaded, f"x_{split}"), getattr(tiny_prepared, f"x_{split}"))
        np.testing.assert_array_equal(getattr(loaded, f"y_{split}"), getattr(tiny_prepared, f"y_{split}"))
    assert (loaded.source, loaded.raw_sha256) == ("bundled", "0" * 64)
    assert loaded.counts()["train"]["total"] == 200


def test_load_prepared_names_what_is_missing(tmp_path):
    with pytest.raises(DataError, match="run `dvc repro prepare`"):
        dataset.load_prepared(tmp_path / "absent.npz")
    atomic.save_npz(tmp_path / "partial.npz", x_train=np.zeros((1, 28, 28, 1), np.float32))
    with pytest.raises(DataError, match="missing arrays y_train"):
        dataset.load_prepared(tmp_path / "partial.npz")


def test_first_of_each_class_takes_the_first_of_each_digit():
    labels = np.array([3, 1, 3, 0, 1])
    images = np.arange(5)[:, None, None, None] * np.ones((5, 28, 28, 1))
    chosen, classes = dataset.first_of_each_class(images, labels)
    assert classes.tolist() == [0, 1, 3]
    assert chosen[:, 0, 0, 0].tolist() == [3, 1, 0]


def _damaged(tmp_path, tiny_prepared, kind):
    """A mnist.npz spoilt one way: what a full disk, a killed copy or a hand edit leaves behind."""
    path = tmp_path / f"{kind}.npz"
    dataset.save_prepared(path, tiny_prepared)
    data = path.read_bytes()
    arrays = atomic.load_npz(path)
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :])
    elif kind == "not-a-zip":
        path.write_bytes(b"<html>not an npz</html>")
    elif kind == "wrong-shape":
        np.savez(path, **{**arrays, "x_train": arrays["x_train"][..., 0]})
    elif kind == "wrong-labels":
        np.savez(path, **{**arrays, "y_val": arrays["y_val"][:-1]})
    elif kind == "object-array":
        np.savez(path, **{**arrays, "y_test": arrays["y_test"].astype(object)})
    return path


DAMAGE = ["truncated", "corrupt", "not-a-zip", "wrong-shape", "wrong-labels", "object-array"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_npz_is_one_data_error(tmp_path, tiny_prepared, kind):
    path = _damaged(tmp_path, tiny_prepared, kind)
    with pytest.raises(DataError) as caught:
        dataset.load_prepared(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and message.endswith("re-run `dvc repro -f prepare`"), message
    assert "\n" not in message


def test_train_stage_reports_a_damaged_npz_in_one_line(tmp_path, tiny_prepared, params_file, capsys):
    from helpers import TINY, load_stage

    path = _damaged(tmp_path, tiny_prepared, "truncated")
    argv = [
        "--params",
        str(params_file(TINY)),
        "--data",
        str(path),
        "--filter-count",
        "4",
        "--kernel-size",
        "3",
        "--stride",
        "2",
        "--model-dir",
        str(tmp_path / "m"),
        "--metrics",
        str(tmp_path / "m.json"),
        "--details",
        str(tmp_path / "d.json"),
        "--history",
        str(tmp_path / "h.csv"),
    ]
    assert load_stage("train").main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}: "), err
    assert not (tmp_path / "m").exists()
