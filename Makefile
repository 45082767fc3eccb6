# The two commands users need: `make repro` (the pipeline) and `make test` (the suite).
# Both create .venv if it is missing and install the pinned lock, so nothing is installed by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# tensorflow-cpu on Linux x86-64 (the lock's platform); `make repro TF_PACKAGE=tensorflow` for GPUs and macOS.
TF_PACKAGE ?= tensorflow-cpu
STAMP := $(VENV)/.installed-$(TF_PACKAGE)
UI_HOST ?= 127.0.0.1
UI_PORT ?= 5000
UI_DB ?= mlflow.db
UI_ARTIFACTS ?= mlartifacts
# The team MLflow server (README: Team setup). The DSN names a PostgreSQL database that exists;
# `make server` creates or migrates MLflow's tables in it. Artifacts go to a folder every user can reach.
MLFLOW_BACKEND_URI ?= postgresql://mlflow@127.0.0.1:5432/mlflow
MLFLOW_ARTIFACTS ?= $(abspath mlartifacts-server)
SERVER_HOST ?= 127.0.0.1
SERVER_PORT ?= 5001
TEAM_STAMP := $(VENV)/.team-installed
CLUSTER_STAMP := $(VENV)/.cluster-installed
# The Dask scheduler `make cluster` submits to (docs/many-machines.md).
SCHEDULER ?= tcp://127.0.0.1:8786

# Stages call plain `python` and `dvc`: put the venv first so they are the pinned ones.
export PATH := $(abspath $(BIN)):$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help install team-install cluster-install repro compare test test-all test-team test-cluster push bench \
	bench-team bench-cluster cluster ui server lock clean-venv vega
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/\1\t\2/' \
		| awk -F '\t' '{ printf "  make %-16s %s\n", $$1, $$2 }'

install: $(STAMP) ## create .venv and install the pinned lock

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3"
	sed 's/^tensorflow_cpu==/$(subst -,_,$(TF_PACKAGE))==/' requirements.lock > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

# The optional team extras (S3 plugin, PostgreSQL driver, moto's S3 server), pinned on top of the lock.
team-install: $(TEAM_STAMP) ## add the team extras (S3 plugin, PostgreSQL driver, moto)

$(TEAM_STAMP): $(STAMP) requirements-team.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -r requirements-team.lock
	touch $@

# The optional cluster extras (Dask's distributed, bokeh for its dashboard), pinned on top of the lock.
cluster-install: $(CLUSTER_STAMP) ## add the cluster extras (Dask distributed, bokeh)

$(CLUSTER_STAMP): $(STAMP) requirements-cluster.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -r requirements-cluster.lock
	touch $@

repro: $(STAMP) ## run the whole pipeline (dvc repro)
	$(BIN)/dvc repro

# The grid on many machines (docs/many-machines.md): every stage the team remote lacks, one Dask task each, on the
# scheduler SCHEDULER's workers; then the gather step here, a plain `dvc repro --pull` that writes dvc.lock once.
# Needs MLFLOW_TRACKING_URI naming a server the workers reach (`make server`) and the DVC remote DVC_REMOTE.
# CLUSTER_ARGS passes more options (--gpu, --git-url URL, --stages train,filters; `python -m filterlab.cluster -h`).
CLUSTER_ARGS ?=
cluster: $(CLUSTER_STAMP) ## the grid on a Dask cluster (SCHEDULER=tcp://…), then the gather step
	$(BIN)/python -m filterlab.cluster --scheduler $(SCHEDULER) --remote $(DVC_REMOTE) $(CLUSTER_ARGS)
	$(BIN)/dvc repro --pull

# The grid in a terminal (at most 120 columns), best first; `make compare REV=main` adds the change against
# a branch, commit or DVC experiment.
REV ?=
compare: $(STAMP) ## the grid in 120 columns, best first (REV=main adds the change against it)
	@$(BIN)/python -m filterlab.compare $(REV)

# Format, lint and types first: they take seconds, the suite a few minutes.
test: $(STAMP) ## format, lint and type checks, then the default test suite
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

test-all: $(STAMP) ## the checks and every test, slow and team ones included
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -m ""

# Share this clone's results with the team remote (README: Team setup): outputs, run-cache, and the
# run-cache's uncached outputs (metrics, plots), which `dvc push --run-cache` alone leaves behind.
DVC_REMOTE ?= team
push: $(STAMP) ## send outputs and run-cache to the DVC remote (DVC_REMOTE=team)
	$(BIN)/python .ci/push_run_cache.py -r $(DVC_REMOTE)

# The heavy shared-path tests: remotes (directory, S3), MLflow on PostgreSQL, the CI script.
test-team: $(TEAM_STAMP) ## the team tests: real PostgreSQL, S3 and directory remotes, the CI script
	$(BIN)/python -m pytest -m team

# The fan-out on loopback: a Dask scheduler and two workers, directory and S3 remotes, MLflow on PostgreSQL.
test-cluster: $(TEAM_STAMP) $(CLUSTER_STAMP) ## the cluster tests: a Dask scheduler and two workers on loopback
	$(BIN)/python -m pytest -m cluster

# The component figures on the bundled subset, then the whole from-scratch run on the data params.yaml names
# (full MNIST; benchmarks/README.md gives the cost).
bench: $(STAMP) ## the component benchmarks, then the whole from-scratch run
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/whole_run.py

# Run-cache restore against a from-scratch repro, and MLflow on PostgreSQL against sqlite.
bench-team: $(TEAM_STAMP) ## run-cache restore and MLflow-on-PostgreSQL benchmarks
	$(BIN)/python benchmarks/team_setup.py

# The grid fanned out to two local Dask workers against a sequential `dvc repro`, and each task's overhead.
bench-cluster: $(TEAM_STAMP) $(CLUSTER_STAMP) ## the fanned-out grid against a sequential dvc repro
	$(BIN)/python benchmarks/cluster.py

# UI_DB / UI_ARTIFACTS open another store, such as CI's downloaded `mlflow` artifact (README: Team setup).
ui: $(STAMP) ## the MLflow UI on mlflow.db, with a link to the best runs
	@echo "MLflow UI: http://$(UI_HOST):$(UI_PORT)  (database: $(abspath $(UI_DB)))"
	@echo "train runs, best test accuracy first: $$(MLFLOW_TRACKING_URI="sqlite:///$(abspath $(UI_DB))" $(BIN)/python -m filterlab.core.tracking http://$(UI_HOST):$(UI_PORT))"
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri "sqlite:///$(abspath $(UI_DB))" \
		--artifacts-destination "$(abspath $(UI_ARTIFACTS))" --host $(UI_HOST) --port $(UI_PORT) --workers 1

# The team tracking server: PostgreSQL backend, artifacts proxied by the server to MLFLOW_ARTIFACTS,
# loopback only unless SERVER_HOST says otherwise. Stages log there with MLFLOW_TRACKING_URI set to its URL.
# The DSN reaches both commands through the environment (the shell expands $$MLFLOW_BACKEND_URI, Make does
# not), so no process's arguments hold it, and the lines printed here mask its password. Keep the password
# out of make's own command line too: export the DSN, or leave it out and use ~/.pgpass (README: Team setup).
export MLFLOW_BACKEND_URI
server: $(TEAM_STAMP) ## the team MLflow server on PostgreSQL (MLFLOW_BACKEND_URI)
	@echo "mlflow db upgrade $$($(BIN)/python -m filterlab.core.secrets mask-env MLFLOW_BACKEND_URI)"
	@$(BIN)/python -c 'import os, sys; from mlflow.db import upgrade; \
		upgrade.main([os.environ["MLFLOW_BACKEND_URI"]], prog_name="mlflow db upgrade")'
	@echo "mlflow server on http://$(SERVER_HOST):$(SERVER_PORT), backend $$($(BIN)/python -m filterlab.core.secrets mask-env MLFLOW_BACKEND_URI)"
	@MLFLOW_BACKEND_STORE_URI="$$MLFLOW_BACKEND_URI" MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server \
		--artifacts-destination "$(MLFLOW_ARTIFACTS)" --serve-artifacts --host $(SERVER_HOST) --port $(SERVER_PORT)

# Re-pin every dependency from pyproject.toml's ranges into requirements.lock.
lock: ## re-pin every dependency from pyproject.toml into requirements.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet "pip==26.3" setuptools && .lock-venv/bin/python -m pip install --quiet ".[test]"
	{ sed -n '1,3p' requirements.lock; .lock-venv/bin/python -m pip freeze --all --exclude-editable | grep -v -e "^filterlab" -e "^pip=="; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean-venv: ## remove .venv
	rm -rf $(VENV)

# `dvc plots show` renders offline: its HTML template (.dvc/plots/offline.html, set in
# .dvc/config) inlines Vega, Vega-Lite and vega-embed instead of loading them from a CDN.
# This target rebuilds it from the npm registry; the result is committed.
VEGA_PACKAGES := vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0
vega: ## rebuild the offline Vega template for dvc plots from the npm registry
	rm -rf .vega && mkdir .vega && cd .vega && npm pack --silent $(VEGA_PACKAGES) >/dev/null \
		&& for f in *.tgz; do mkdir "$${f%.tgz}" && tar xzf "$$f" -C "$${f%.tgz}" --strip-components 1; done
	{ printf '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n{refresh_tag}\n<title>DVC plots</title>\n'; \
	  for js in .vega/vega-5*/build/vega.min.js .vega/vega-lite-*/build/vega-lite.min.js \
	            .vega/vega-embed-*/build/vega-embed.min.js; do printf '<script>\n'; cat "$$js"; printf '\n</script>\n'; done; \
	  printf '</head>\n<body>\n{plot_divs}\n</body>\n</html>\n'; } > .dvc/plots/offline.html
	rm -rf .vega
