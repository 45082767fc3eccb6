"""Stage `download`: reads params.yaml's `data` section (and MNIST_MIRROR); writes data/raw/.

data/raw/ receives the MNIST IDX `.gz` files and manifest.json (source, where from, each
file's sha256, size and verified content digest, image counts). Everything is assembled in a
hidden staging folder beside the output and swapped in at the end, so a failed run never leaves
a half-filled folder; SIGTERM removes the staging folder on the way out, and what a `kill -9`
left behind (staging folders, a replaced folder, the PyPI channel's wheel folder) is removed
when the next run starts.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

from filterlab.config.params import load_section
from filterlab.config.sections import DataParams, open_params
from filterlab.core import atomic, stage


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True, help="params.yaml")
    parser.add_argument("--out", required=True, type=Path, help="folder for the raw files (data/raw)")
    return parser.parse_args(argv)


def remove_debris(out: Path) -> list[str]:
    """Delete the temp folders an earlier, killed run of this stage left beside `out`; returns their names.

    Only this stage makes them, and DVC runs one stage at a time in a workspace, so none is in use.
    """
    patterns = (f".{out.name}.*.tmp", f".{out.name}.old.*", ".pypi-wheel.*")
    debris = sorted({path for pattern in patterns for path in out.parent.glob(pattern) if path.is_dir()})
    for path in debris:
        shutil.rmtree(path, ignore_errors=True)
    return [path.name for path in debris]


def download(args: argparse.Namespace) -> None:
    params = load_section(open_params(args.params), "data", DataParams)
    from filterlab.data import raw  # NumPy loads after the pin

    args.out.parent.mkdir(parents=True, exist_ok=True)
    remove_debris(args.out)
    with atomic.landing_folder(args.out) as staging:
        manifest, warnings = raw.obtain(params, staging, env_mirror=os.environ.get("MNIST_MIRROR") or None)
        for warning in warnings:
            print(warning, file=sys.stderr)
        atomic.write_json(staging / "manifest.json", manifest)
    print(f"{args.out}: MNIST from {manifest['source']}, image counts {manifest['counts']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: download(args))


if __name__ == "__main__":
    stage.entry(main)
