"""The benchmark scripts still run and still compare equal things (no timing asserts: see benchmarks/)."""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_convolution_benchmark_checks_every_engine_against_the_reference(tiny_prepared):
    import convolution as bench
    from filterlab.kernels.bank import KERNELS

    kernels = [KERNELS[name] for name in ("sobel_x", "peak_1x3", "gaussian_5x5")]
    result = bench.run(tiny_prepared.x_train[:12], kernels, repeats=1)
    assert set(result["engines"]) == {"numpy", "tensorflow"}
    assert all(difference <= 1e-5 for difference in result["max_abs_difference"].values())
    assert result["padded_side"] == 5 and result["images"] == 12


def test_convolution_benchmark_refuses_a_wrong_batched_result(tiny_prepared, monkeypatch):
    import convolution as bench
    from filterlab.kernels.bank import KERNELS

    def off_by_a_little(images, kernels):
        return bench.convolution.convolve_batch(images, kernels) + 1e-3

    monkeypatch.setitem(bench.ENGINES, "numpy", off_by_a_little)
    with pytest.raises(RuntimeError, match="differs"):
        bench.run(tiny_prepared.x_train[:4], [KERNELS["sobel_x"]], repeats=1)


def test_throughput_benchmark_times_both_arms_of_the_same_model(tiny_prepared, mlflow_uri):
    import throughput
    from filterlab.config.geometry import VariantSpec
    from helpers import train_params

    params = train_params({"learning_rate": 0.01, "block2_filters": 4, "dropout": 0.1, "threads": 0, "seeds": 1})
    result = throughput.compare(tiny_prepared, VariantSpec(4, 3, 2), params, seed=1, repeats=1)
    assert result["training_throughput"]["train_images"] == len(tiny_prepared.x_train)
    assert result["training_throughput"]["ratio_ours_to_bare"]["n"] == 1
    assert result["mlflow_logging"]["tracking_seconds"]["median"] > 0


def test_pipeline_benchmark_charges_each_stage_until_the_next_one_starts(tmp_path):
    import whole_run as bench

    # The download "stage" holds 50 MB for a second: the sampler (every 0.2 s) must see it.
    script = (
        "import time\nprint(\"Running stage 'download':\", flush=True)\nheld = bytearray(50 * 2**20)\n"
        "time.sleep(1.0)\ndel held\nprint('some output', flush=True)\n"
        "print(\"Running stage 'train@8-3-1':\", flush=True)\n"
    )
    wall, stages, peaks, output = bench.timed_repro([sys.executable, "-c", script], tmp_path, {})
    assert list(stages) == ["download", "train@8-3-1"] and "some output" in output
    assert stages["download"] >= 1.0 and sum(stages.values()) <= wall
    assert peaks["download"] >= 50 * 2**20
    assert [bench.kind(name) for name in stages] == ["download", "train"]
    with pytest.raises(RuntimeError, match="failed"):
        bench.timed_repro([sys.executable, "-c", "raise SystemExit(3)"], tmp_path, {})


def test_pipeline_comparison_counts_the_probes_as_overhead_in_both_runs():
    import whole_run as bench

    def run(wall, train, baselines, probes, noop):
        return {
            "revision": "x",
            "wall_seconds": wall,
            "noop_repro_seconds": {"median": noop},
            "fit_seconds": {"train": train, "baselines": baselines, "probes": probes},
        }

    # An older commit records no probe seconds (0): the overhead ratio leaves the probes in both overheads.
    ratios = bench.compared(run(500, 200, 100, 20, 2.5), run(800, 200, 100, 0, 3.5))
    assert ratios["wall_ratio"] == 0.625 and ratios["fit_ratio"] == 1.0
    assert ratios["overhead_ratio"] == 0.4  # (500 - 300) / (800 - 300)
    assert ratios["noop_median_ratio"] == round(2.5 / 3.5, 3)
    skipped = run(800, 200, 100, 0, 0) | {"noop_repro_seconds": {"skipped": "not up to date"}}
    assert bench.compared(run(500, 200, 100, 20, 2.5), skipped)["noop_median_ratio"] is None


def test_a_revision_copy_holds_that_commit_not_the_working_tree(tmp_path):
    import whole_run as bench

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("first\n")
    subprocess.run(["git", "add", "dvc.yaml"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "first"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("second\n")
    subprocess.run([*git, "commit", "-qam", "second"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("uncommitted\n")
    first = bench.commit(repo, "HEAD~1")
    copy = bench.copy_revision(repo, first, tmp_path / "copies")
    assert (copy / "dvc.yaml").read_text() == "first\n"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=copy, capture_output=True, text=True, check=True)
    assert status.stdout == ""
    with pytest.raises(subprocess.CalledProcessError):
        bench.commit(repo, "no-such-revision")


def test_results_are_merged_into_the_file_keeping_the_other_entries(tmp_path):
    import json

    import measure

    out = tmp_path / "benchmarks.json"
    measure.merge_into(out, {"team": 1, "pipeline_change": "stale"})
    measure.merge_into(out, {"pipeline": 2}, drop=("pipeline_change",))
    assert json.loads(out.read_text()) == {"pipeline": 2, "team": 1}


def test_fit_seconds_come_from_the_mlflow_store_summed_per_experiment(tmp_path):
    """What the stages log (`fit_seconds`, and `replicates_fit_seconds` above one seed), read back by experiment;
    deleted runs do not count, and a copy without a store falls back to the metrics files."""
    from mlflow.tracking import MlflowClient

    import whole_run as bench

    database = tmp_path / "mlflow.db"
    client = MlflowClient(f"sqlite:///{database}")
    logged = {
        "train": [{"fit_seconds": 2.0}, {"fit_seconds": 3.0, "replicates_fit_seconds": 5.5}],
        "baselines": [{"fit_seconds": 7.0}],
        "probes": [{"fit_seconds": 0.5}],
    }
    for experiment, runs in logged.items():
        experiment_id = client.create_experiment(experiment, artifact_location=(tmp_path / "a").as_uri())
        for metrics in runs:
            run = client.create_run(experiment_id)
            for key, value in metrics.items():
                client.log_metric(run.info.run_id, key, value)
    deleted = client.create_run(client.get_experiment_by_name("train").experiment_id)
    client.log_metric(deleted.info.run_id, "fit_seconds", 100.0)
    client.delete_run(deleted.info.run_id)
    assert bench.fit_seconds(tmp_path, database) == {"train": 10.5, "baselines": 7.0, "probes": 0.5}
    assert bench.logged_fit_seconds(tmp_path / "absent.db") == {}


def test_cluster_benchmark_projects_each_variant_s_chain_on_n_workers():
    import cluster as bench

    seconds = {"train@1": {"repro": 10, "pull": 1}, "filters@1": {"repro": 2}, "train@2": {"repro": 5}}
    tasks = {stage: {"seconds": steps} for stage, steps in {**seconds, "baselines": {"repro": 20}}.items()}
    assert sorted(bench.chains(tasks)) == [5, 13, 20]  # filters@1 waits for train@1: one job
    assert [bench.makespan([5, 13, 20], n) for n in (1, 2, 8)] == [38, 20, 20]  # the longest job bounds it
