"""`python -m filterlab.log_missing STAGE…`: log to MLflow the runs a stage could not, from its DVC outputs.

When the tracking store goes away mid-run, a stage finishes its work and writes its outputs anyway, and says
its MLflow run is incomplete (`filterlab.core.tracking`). Once tracking is back, this replays what the stage
logs (params, tags, per-epoch and final metrics, artifacts) into a new run of the same name, read from the
outputs `dvc.yaml` declares for the stage, in the tracking store `MLFLOW_TRACKING_URI` names. The incomplete
run is marked KILLED when its process is gone. Reads params.yaml, dvc.yaml (through DVC's API) and the stage's
outputs; writes only to MLflow.

    python -m filterlab.log_missing train@8-3-1          # one grid variant
    python -m filterlab.log_missing baselines probes    # every baseline, every probe

Per-epoch wall seconds and fit seconds are not outputs, so a replayed run has none; it is tagged
`replayed_by` so it can be told from one logged live.
"""

import argparse
import csv
import dataclasses
import json
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from filterlab.config.geometry import VariantSpec
from filterlab.config.params import load_section, load_seed, read_params
from filterlab.config.sections import BaselinesParams, ProbesParams, TrainParams
from filterlab.core import stage
from filterlab.core.errors import DataError, FilterlabError

REPLAYED_TAG = "replayed_by"
REPLAYED = "python -m filterlab.log_missing, from the stage's DVC outputs"
# The metrics file's keys (`filterlab.training.fit.headline_metrics`) and the names the stages log them under.
FINAL_METRICS = {
    "accuracy": "test_accuracy",
    "loss": "test_loss",
    "ci95_low": "test_accuracy_ci95_low",
    "ci95_high": "test_accuracy_ci95_high",
    "accuracy_seed_mean": "test_accuracy_seed_mean",
    "accuracy_seed_sd": "test_accuracy_seed_sd",
}


@dataclasses.dataclass(frozen=True)
class Replay:
    """One MLflow run to log again: what `filterlab.core.tracking.start_run` takes, and what goes into it."""

    experiment: str
    run_name: str
    params: Mapping[str, Any]
    tags: Mapping[str, str]
    epochs: tuple[Mapping[str, float], ...] = ()
    final: Mapping[str, float] = dataclasses.field(default_factory=dict)
    artifacts: tuple[Path, ...] = ()


def stage_flags(command: str) -> dict[str, str]:
    """`--flag value` pairs of a stage's command line, as dvc.yaml resolves it."""
    words = shlex.split(command)
    return {word: value for word, value in zip(words, words[1:], strict=False) if word.startswith("--")}


def _read_json(path: Path, stage_name: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; `dvc checkout {stage_name}` restores the stage's outputs") from None
    except ValueError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None


def final_metrics(headline: Mapping[str, Any]) -> dict[str, float]:
    return {FINAL_METRICS[key]: float(value) for key, value in headline.items() if key in FINAL_METRICS}


def history_rows(path: Path, stage_name: str) -> tuple[dict[str, float], ...]:
    """The per-epoch history CSV (`filterlab.training.fit.history_csv`) as rows of floats."""
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            return tuple({key: float(value) for key, value in row.items()} for row in csv.DictReader(stream))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; `dvc checkout {stage_name}` restores the stage's outputs") from None
    except ValueError as error:
        raise DataError(f"{path}: not a history CSV ({error})") from None


def data_tags(prepared: Path) -> dict[str, str]:
    """The data source and raw digest every training run is tagged with, read from the prepared npz alone."""
    import numpy as np

    try:
        with np.load(prepared, allow_pickle=False) as archive:
            return {"data.source": str(archive["source"]), "data.sha256": str(archive["raw_sha256"])}
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{prepared}: cannot read its source and digest ({error}); run `dvc repro prepare`") from None


def train_replays(params: Mapping[str, Any], flags: Mapping[str, str], stage_name: str) -> Iterator[Replay]:
    from filterlab.training import artifacts, records

    section = load_section(params, "train", TrainParams)
    variant = VariantSpec(int(flags["--filter-count"]), int(flags["--kernel-size"]), int(flags["--stride"]))
    model_dir = Path(flags["--model-dir"])
    tags = data_tags(Path(flags["--data"])) | {"variant": variant.name}
    from filterlab.core import tracking

    filters = model_dir / artifacts.FILTERS_FILE
    if not filters.is_file():
        raise DataError(f"{filters}: not found; `dvc checkout {stage_name}` restores the stage's outputs")
    tags[tracking.FILTERS_TAG] = artifacts.file_sha256(filters)
    yield Replay(
        experiment="train",
        run_name=variant.name,
        params=records.run_params(variant, section, load_seed(params)),
        tags=tags,
        epochs=history_rows(Path(flags["--history"]), stage_name),
        final=final_metrics(_read_json(Path(flags["--metrics"]), stage_name)),
        artifacts=tuple(sorted(path for path in model_dir.iterdir() if path.is_file())),
    )


def baselines_replays(params: Mapping[str, Any], flags: Mapping[str, str], stage_name: str) -> Iterator[Replay]:
    from filterlab.training import baselines

    train, section = load_section(params, "train", TrainParams), load_section(params, "baselines", BaselinesParams)
    seed = load_seed(params)
    details = _read_json(Path(flags["--details"]), stage_name)
    tags = {"data.source": str(details["data_source"]), "data.sha256": str(details["data_sha256"])}
    from filterlab.kernels import bank

    for baseline in baselines.plan(bank.select(section.kernels), section.random_std, seed):
        yield Replay(
            experiment="baselines",
            run_name=baseline.name,
            params=baselines.run_params(baseline, train, section.random_std, seed),
            tags=tags,
            final=final_metrics(_read_json(Path(flags["--metrics"]) / baselines.file_name(baseline), stage_name)),
        )


def probes_replays(params: Mapping[str, Any], flags: Mapping[str, str], stage_name: str) -> Iterator[Replay]:
    section, seed = load_section(params, "probes", ProbesParams), load_seed(params)
    details = _read_json(Path(flags["--details"]), stage_name)
    figures = Path(flags["--figures"])
    recovery = details["recovery"]
    flat_recovery = {
        f"{name}.max_abs_error": entry["max_abs_error"] for name, entry in recovery.items() if name != "max_abs_error"
    }
    logged = {
        "single_image": details["single_image"],
        "peak": details["peak"],
        "recovery": flat_recovery | {"max_abs_error": recovery["max_abs_error"]},
    }
    for name, metrics in logged.items():
        yield Replay(
            experiment="probes",
            run_name=name,
            params={**vars(getattr(section, name)), "seed": seed},
            tags={},
            final={key: float(value) for key, value in metrics.items() if type(value) in (int, float)},
            artifacts=(figures / f"{name}.png",),
        )


# The stages that log to MLflow, and how each one's payload is read back from its outputs.
REPLAYERS = {"train": train_replays, "baselines": baselines_replays, "probes": probes_replays}


def replays(stage_name: str, command: str, params: Mapping[str, Any]) -> list[Replay]:
    kind = stage_name.split("@")[0]
    if kind not in REPLAYERS:
        raise FilterlabError(f"{stage_name}: logs nothing to MLflow; stages that do: {', '.join(REPLAYERS)}")
    return [
        dataclasses.replace(replay, tags={**replay.tags, "dvc.stage": stage_name})
        for replay in REPLAYERS[kind](params, stage_flags(command), stage_name)
    ]


def log(replay: Replay) -> str:
    """Log one replay as a new run (the sweep label tells it apart); its run id."""
    from filterlab.core import tracking

    tags = {**replay.tags, REPLAYED_TAG: REPLAYED}
    with tracking.start_run(replay.experiment, replay.run_name, params=replay.params, tags=tags) as run:
        for row in replay.epochs:
            run.log_metrics({key: value for key, value in row.items() if key != "epoch"}, step=int(row["epoch"]))
        if replay.final:
            run.log_metrics(replay.final)
        for path in replay.artifacts:
            run.log_artifact(path)
        if run.incomplete:
            raise FilterlabError(f"MLflow is still not usable ({run.incomplete}); nothing more was logged")
    return run.run_id


def stage_commands(targets: list[str]) -> dict[str, str]:
    """Each target's stages (a matrix name expands to every item) and their resolved command lines."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    commands: dict[str, str] = {}
    with Repo() as repo:
        for target in targets:
            try:
                stages = repo.stage.collect(target)
            except DvcException as error:
                raise FilterlabError(f"{target}: not a stage of dvc.yaml ({error})") from None
            commands |= {stage.addressing: stage.cmd for stage in stages if stage.cmd}
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="+", metavar="STAGE", help="dvc.yaml stage names, e.g. train@8-3-1")
    parser.add_argument("--params", default="params.yaml", type=Path)
    args = parser.parse_args(argv)
    return stage.run(lambda: replay_stages(args.stages, read_params(str(args.params))))


def replay_stages(targets: list[str], params: Mapping[str, Any]) -> None:
    for stage_name, command in stage_commands(targets).items():
        for replay in replays(stage_name, command, params):
            print(f"{stage_name}: logged {replay.experiment}/{replay.run_name} as run {log(replay)}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
