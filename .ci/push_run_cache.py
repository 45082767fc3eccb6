"""`dvc push --run-cache`, plus the outputs that DVC 3 leaves behind: `python .ci/push_run_cache.py [-r REMOTE]`.

Reads the repo's local run-cache (.dvc/cache/runs); writes to the remote only. DVC 3's
`push --run-cache` sends the run-cache entries but only the objects of the workspace's
dvc.lock, never those of uncached outputs (our metrics and plots, which the run-cache stored
in .dvc/cache): another clone then finds the entry, cannot check those files out, and
re-runs the stage. This pushes the objects of every run-cache entry as well, as DVC 2 did,
so `dvc pull --run-cache && dvc repro --pull` restores them (README: Team setup).
"""

import argparse
from pathlib import Path

from dvc.repo import Repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--remote", default=None, help="remote name (default: the default remote)")
    args = parser.parse_args()
    with Repo() as repo:
        repo.push(run_cache=True, remote=args.remote)
        runs = Path(repo.stage_cache.cache_dir)
        entries = [(path.parent.name, path.name) for path in runs.glob("*/*/*") if path.is_file()]
        pushed = 0
        for odb, objs in repo.stage_cache.get_used_objs(entries).items():
            pushed += len(repo.cloud.push(objs, remote=args.remote, odb=odb).transferred)
    print(f"run-cache: {len(entries)} entries, {pushed} more objects pushed")


if __name__ == "__main__":
    main()
