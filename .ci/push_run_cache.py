"""`dvc push --run-cache`, plus the outputs that DVC 3 leaves behind: `python .ci/push_run_cache.py [-r REMOTE]`.

Reads the repo's local run-cache (.dvc/cache/runs); writes to the remote only. DVC 3's
`push --run-cache` sends the run-cache entries but only the objects of the workspace's
dvc.lock, never those of uncached outputs (our metrics and plots, which the run-cache stored
in .dvc/cache): another clone then finds the entry, cannot check those files out, and
re-runs the stage. This pushes the objects of every run-cache entry as well, as DVC 2 did,
so `dvc pull --run-cache && dvc repro --pull` restores them (README: Team setup).

A push that fails ends with one line naming the remote and the cause (read-only, full, not a
folder, unreachable) instead of DVC's per-file tracebacks, and exits 1. On a directory remote
it removes the temp files a failed transfer leaves (`*.tmp`, written during this push), and
any older than a day that an earlier, killed push left. The local cache is only read.
"""

import argparse
import contextlib
import errno
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

STALE_TEMP_SECONDS = 24 * 3600  # a temp file this old belongs to no push still running


def remote_folder(repo, name: str | None) -> tuple[str, Path | None]:
    """(the remote's name, its folder when it is a directory remote, else None)."""
    remotes = repo.config.get("remote", {})
    name = name or repo.config.get("core", {}).get("remote")
    if not name or name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise LookupError(
            f"no remote named {name!r} (configured: {known}); add one with `dvc remote add -d team <url>`"
            if name
            else f"no default remote (configured: {known}); pass -r NAME or `dvc remote add -d`"
        )
    url = remotes[name]["url"]
    if "://" in url and not url.startswith("file://"):
        return name, None
    path = Path(url.removeprefix("file://"))
    return name, path if path.is_absolute() else (Path(repo.root_dir) / ".dvc" / path).resolve()


def directory_cause(folder: Path) -> str | None:
    """Why a directory remote cannot take files, found by looking at it; None when nothing is visibly wrong."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{probe} is not a folder"
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        free = None
    if free is not None and free < 1024 * 1024:
        return f"the remote is full ({free:,} bytes free on its device)"
    try:
        handle = probe / f".filterlab-write-probe-{os.getpid()}"
        handle.write_bytes(b"")
        handle.unlink()
    except OSError as error:
        reasons = {
            errno.EROFS: "the remote is on a read-only file system",
            errno.EACCES: "the remote is read-only for this user (permission denied)",
            errno.EPERM: "the remote is read-only for this user",
            errno.ENOSPC: "the remote is full (no space left on the device)",
        }
        return reasons.get(error.errno, f"the remote cannot be written ({error.strerror})")
    return None


def remove_temp_files(folder: Path, since: float) -> int:
    """Delete `*.tmp` files under `folder` written since `since` (this push) or older than a day; returns how many."""
    removed = 0
    now = time.time()
    for path in folder.rglob("*.tmp") if folder.is_dir() else []:
        try:
            modified = path.stat().st_mtime
            if modified >= since or now - modified > STALE_TEMP_SECONDS:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def stderr_held() -> Iterator[None]:
    """File descriptor 2 goes to a discarded temp file for the block: DVC prints a line per failed file (its own
    handlers hold the stream), and the one line after the block says what matters."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def push(remote: str | None) -> int:
    from dvc.repo import Repo

    started = time.time()
    with Repo() as repo:
        name, folder = remote_folder(repo, remote)
        if folder is not None:
            remove_temp_files(folder, float("inf"))  # only what a killed push left, more than a day ago
        try:
            with stderr_held():
                repo.push(run_cache=True, remote=name)
                runs = Path(repo.stage_cache.cache_dir)
                entries = [(path.parent.name, path.name) for path in runs.glob("*/*/*") if path.is_file()]
                pushed = 0
                for odb, objs in repo.stage_cache.get_used_objs(entries).items():
                    pushed += len(repo.cloud.push(objs, remote=name, odb=odb).transferred)
        except Exception as error:  # DVC's own exception types vary by remote and version: all end here
            cause = directory_cause(folder) if folder is not None else None
            cleaned = remove_temp_files(folder, started) if folder is not None else 0
            detail = cause or " ".join(str(error).split()) or type(error).__name__
            tail = f"; {cleaned} partial temp files removed" if cleaned else ""
            print(
                f"error: make push to remote '{name}' ({folder or 'remote URL'}) failed: {detail}{tail}. "
                "The local cache is untouched; fix the remote and run `make push` again.",
                file=sys.stderr,
            )
            return 1
    print(f"run-cache: {len(entries)} entries, {pushed} more objects pushed")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--remote", default=None, help="remote name (default: the default remote)")
    args = parser.parse_args()
    # DVC logs every failed file with its traceback; the one line below says what matters.
    for name in ("dvc", "dvc_data", "dvc_objects", "dvc_s3", "s3fs", "botocore"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return push(args.remote)
    except LookupError as error:
        print(f"error: make push: {error.args[0]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
