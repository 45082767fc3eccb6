"""The grid on many machines: `python -m filterlab.cluster` fans the missing stages of dvc.yaml out to Dask workers.

`plan` (which stages the run-cache lacks), `workspace` (one stage in its own clone, on a worker), `tasks` (the
function Dask runs), `runs` (MLflow runs a lost worker left RUNNING), `submit` (the command). No stage imports
this package, so no stage's dvc.lock entry depends on it (docs/many-machines.md).
"""
