"""Which fanned-out stages the team remote lacks: reads dvc.yaml (its matrix is the grid), dvc.lock, params.yaml and the
workspace's files through DVC's Python API, and the remote's run-cache entries and objects; writes nothing.

A stage is done when the remote holds a run-cache entry under DVC's own key for it (its command, params and the
hashes of its deps) and every object that entry names, metrics included: exactly what `dvc repro --pull` needs to
restore it instead of running it. An input that another stage writes takes its hash from that stage's entry when
the workspace lacks the file, so `filters@…` is planned from the entry of its `train@…` without fetching the model.
A stage whose producer is not done yet waits for that producer's task.

DVC 3.67 has no public call for a stage's run-cache key: this module is the one door to `dvc.stage.cache` and
`dvc.stage.serialize`, pinned with DVC in requirements.lock.
"""

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Run once, by the submitting machine, before anything fans out: every fanned-out stage reads their outputs.
UPSTREAM_STAGES = ("validate", "download", "prepare")
# What fans out, in an order where a stage comes after every stage it reads from.
FANNED_KINDS = ("baselines", "probes", "train", "filters")
LOCK_SCHEMA = "2.0"

Entry = dict[str, Any]


def kind(stage_name: str) -> str:
    """`train@8-3-1` -> `train`."""
    return stage_name.split("@", 1)[0]


@dataclass(frozen=True)
class StagePlan:
    """One fanned-out stage: what it reads from other stages, and its entry on the remote when it is done."""

    name: str
    inputs: tuple[str, ...]  # paths it reads that other stages write
    producers: tuple[str, ...]  # the stages that write them
    entry: Entry | None = None  # the complete run-cache (or dvc.lock) entry on the remote: done
    waits_for: tuple[str, ...] = field(default=())  # fanned-out producers not done yet: their tasks come first

    @property
    def done(self) -> bool:
        return self.entry is not None


def open_repo(root: Path) -> Any:
    from dvc.repo import Repo

    return Repo(str(root))


def read_lock(root: Path) -> dict[str, Entry]:
    """dvc.lock's stage entries by name ({} without a lock)."""
    path = root / "dvc.lock"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    stages: dict[str, Entry] = data.get("stages", {})
    return stages


def write_lock(root: Path, entries: Mapping[str, Entry]) -> None:
    """Replace a throwaway clone's dvc.lock with exactly `entries` (never the submitter's: only workspaces call it)."""
    text = yaml.safe_dump({"schema": LOCK_SCHEMA, "stages": dict(entries)}, sort_keys=False)
    (root / "dvc.lock").write_text(text, encoding="utf-8")


def stage_graph(repo: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(every stage of dvc.yaml by name, matrix expanded; the stage that writes each output path)."""
    stages = {stage.name: stage for stage in repo.index.stages if getattr(stage, "name", None)}
    owners = {out.def_path: name for name, stage in stages.items() for out in stage.outs}
    return stages, owners


def inputs_of(stage: Any, owners: Mapping[str, str]) -> tuple[str, ...]:
    """The dep paths of `stage` that another stage writes."""
    return tuple(sorted(dep.def_path for dep in stage.deps if dep.def_path in owners))


def stage_key(stage: Any, known_outputs: Mapping[str, Mapping[str, Any]]) -> str:
    """DVC's run-cache key for `stage`: deps hashed from the workspace, or taken from `known_outputs` (path -> the
    out as a dvc.lock entry lists it) for paths written by another stage."""
    from dvc.dependency.param import ParamsDependency
    from dvc.stage.cache import _get_cache_hash
    from dvc.stage.serialize import to_single_stage_lockfile
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta

    for dep in stage.deps:
        known = known_outputs.get(dep.def_path)
        if known is not None and not isinstance(dep, ParamsDependency):
            dep.hash_info = HashInfo("md5", known["md5"])
            dep.meta = Meta.from_dict(dict(known))
        else:
            dep.save()
    key: str = _get_cache_hash(to_single_stage_lockfile(stage), key=True)
    return key


def entry_key(entry: Entry) -> str:
    """The run-cache key a dvc.lock entry belongs to (the same function of command, deps and params)."""
    from dvc.stage.cache import _get_cache_hash

    key: str = _get_cache_hash(copy.deepcopy(entry), key=True)
    return key


def outputs_of(entries: Iterable[Entry]) -> dict[str, Entry]:
    """path -> out, over the outs of `entries`."""
    return {out["path"]: out for entry in entries for out in entry.get("outs", [])}


class RemoteRunCache:
    """The remote's run-cache entries and objects, looked up one key at a time (no `dvc pull --run-cache`)."""

    def __init__(self, repo: Any, remote: str):
        self._repo = repo
        self._remote = repo.cloud.get_remote(remote, "status")

    def entries(self, key: str) -> list[Entry]:
        """Every entry stored under `key` on the remote, then in the local run-cache."""
        found = []
        legacy = self._remote.legacy_odb
        folder = legacy.fs.join(legacy.path, "runs", key[:2], key)
        if legacy.fs.exists(folder):
            for path in sorted(legacy.fs.find(folder)):
                found.append(yaml.safe_load(legacy.fs.cat_file(path)))
        local = Path(self._repo.stage_cache.cache_dir) / key[:2] / key
        for path in sorted(local.glob("*")) if local.is_dir() else []:
            found.append(yaml.safe_load(path.read_text(encoding="utf-8")))
        return [entry for entry in found if isinstance(entry, dict)]

    def complete(self, entry: Entry) -> bool:
        """Whether the remote holds every object `entry` names (a push cut short leaves some out)."""
        for out in entry.get("outs", []):
            odb = self._remote.odb if out.get("hash") == "md5" else self._remote.legacy_odb
            if "md5" not in out or not odb.exists(out["md5"]):
                return False
        return True

    def done_entry(self, key: str, lock_entry: Entry | None = None) -> Entry | None:
        """A complete entry for `key`: from the run-cache, or the dvc.lock entry when it has the same key."""
        candidates = self.entries(key)
        if lock_entry is not None and entry_key(lock_entry) == key:
            candidates.append(lock_entry)
        return next((entry for entry in candidates if self.complete(entry)), None)


def plan(root: Path, remote: str, kinds: Iterable[str] = FANNED_KINDS) -> list[StagePlan]:
    """Every stage of `kinds` in dvc.yaml, in dependency order, with its entry where the remote has it complete.

    `root` is a clone where the upstream stages ran (their outputs and dvc.lock entries are there).
    """
    wanted = list(kinds)
    lock = read_lock(root)
    repo = open_repo(root)
    try:
        stages, owners = stage_graph(repo)
        cache = RemoteRunCache(repo, remote)
        entries: dict[str, Entry] = {name: lock[name] for name in UPSTREAM_STAGES if name in lock}
        plans = []
        order = {name: index for index, name in enumerate(FANNED_KINDS)}
        selected = sorted((name for name in stages if kind(name) in wanted), key=lambda n: (order[kind(n)], n))
        for name in selected:
            stage = stages[name]
            inputs = inputs_of(stage, owners)
            producers = tuple(sorted({owners[path] for path in inputs}))
            waiting = tuple(p for p in producers if p not in entries)
            if waiting:
                plans.append(StagePlan(name, inputs, producers, waits_for=waiting))
                continue
            key = stage_key(stage, outputs_of(entries[p] for p in producers))
            entry = cache.done_entry(key, lock.get(name))
            if entry is not None:
                entries[name] = entry
            plans.append(StagePlan(name, inputs, producers, entry=entry))
        return plans
    finally:
        repo.close()


def done_on_remote(root: Path, remote: str, stage_name: str, produced: Mapping[str, Entry]) -> Entry | None:
    """The stage's complete entry on the remote, its inputs hashed from `produced` (their producers' entries)."""
    repo = open_repo(root)
    try:
        stages, _owners = stage_graph(repo)
        key = stage_key(stages[stage_name], outputs_of(produced.values()))
        return RemoteRunCache(repo, remote).done_entry(key)
    finally:
        repo.close()
