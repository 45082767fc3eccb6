"""Benchmarks 1 and 5: our train loop against a bare `model.fit`, and MLflow's share of it.

Reads nothing from disk (the caller passes the data); logs to a throwaway MLflow store
under the caller's temp folder (MLFLOW_TRACKING_URI). Arms are interleaved A/B/A/B in
one process after one warm-up each, so both see the same machine load.
"""

import io
import time
import warnings
from contextlib import redirect_stdout

import keras

from filterlab.config.sections import TrainParams
from filterlab.core import tracking
from filterlab.data.dataset import Prepared
from filterlab.training import fit, records
from measure import summary


def bare_fit(data: Prepared, variant: fit.VariantSpec, params: TrainParams, seed: int) -> float:
    """Seconds of a plain `model.fit` of the identical model: no callbacks, no tracking."""
    return fit.fit_model(fit.seeded_model(variant, params, seed), data, params)


def our_fit(data: Prepared, variant: fit.VariantSpec, params: TrainParams, seed: int) -> tuple[float, float]:
    """(fit seconds, tracking seconds) of the train stage's loop with its per-epoch print and MLflow logging."""
    keras.backend.clear_session()
    entered = time.perf_counter()
    with tracking.start_run("benchmark", variant.name, params=records.run_params(variant, params, seed)) as run:
        opened = time.perf_counter() - entered  # creating the run, its tags and params (also in run.seconds)
        counted_when_opened = run.seconds

        def on_epoch(row: dict) -> None:
            print(f"{variant.name} epoch {row['epoch']}: loss {row['loss']:.4f}", flush=True)
            run.log_metrics({key: row[key] for key in fit.LOGGED}, step=row["epoch"])

        with redirect_stdout(io.StringIO()):
            result = fit.train_variant(data, variant, params, seed, on_epoch=on_epoch)
        run.log_metrics({"test_accuracy": result.test_accuracy, "test_loss": result.test_loss})
        logged = run.seconds - counted_when_opened
        closing = time.perf_counter()
    closed = time.perf_counter() - closing  # ending the run
    return result.seconds, opened + logged + closed


def compare(data: Prepared, variant: fit.VariantSpec, params: TrainParams, seed: int, repeats: int) -> dict:
    """Images per second of both arms, their ratio, and MLflow seconds against fit seconds."""
    warnings.filterwarnings("ignore", message="TensorFlow thread pools already started")
    images = len(data.x_train) * params.epochs
    bare_fit(data, variant, params, seed)  # warm-up: graph tracing, allocator, page cache
    our_fit(data, variant, params, seed)
    bare, ours, tracked = [], [], []
    for _ in range(repeats):
        bare.append(bare_fit(data, variant, params, seed))
        fit_seconds, tracking_seconds = our_fit(data, variant, params, seed)
        ours.append(fit_seconds)
        tracked.append(tracking_seconds)
    bare_ips = [images / seconds for seconds in bare]
    our_ips = [images / seconds for seconds in ours]
    ratios = [mine / plain for mine, plain in zip(our_ips, bare_ips, strict=True)]
    shares = [track / fit for track, fit in zip(tracked, ours, strict=True)]
    return {
        "training_throughput": {
            "variant": variant.name,
            "epochs": params.epochs,
            "batch_size": params.batch_size,
            "train_images": len(data.x_train),
            "bare_images_per_second": summary(bare_ips),
            "ours_images_per_second": summary(our_ips),
            "ratio_ours_to_bare": summary(ratios),
            "target": ">= 0.95",
        },
        "mlflow_logging": {
            "variant": variant.name,
            "tracking_seconds": summary(tracked),
            "fit_seconds": summary(ours),
            "share_of_fit": summary(shares),
            "target": "<= 0.02",
        },
        "bare_fit_seconds": summary(bare),
    }
