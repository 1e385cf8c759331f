# The two commands of the README: `make run` (main job on the embedded data) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_LEVEL ?= WARNING
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180
export MPLBACKEND ?= Agg

.PHONY: install run test test-fast lint data benchmark clean team-up team-run team-down team-backup

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m flows.prefect_server --template
	touch $(STAMP)

run: install
	$(BIN)/exportcast run --config config.yaml

test: install
	$(BIN)/python -m pytest -n 2 -q

test-fast: install
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

data: install
	$(BIN)/exportcast data build --raw ../shared/data/raw --projections ../shared/data/projections

benchmark: install
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/speed.py

clean:
	rm -rf $(VENV) outputs .pytest_cache

# The team set on this machine (flows/team.py; state under .team/, passwords in .team/env)
team-up: install
	$(BIN)/python -m flows.team up

team-run: install
	$(BIN)/python -m flows.team run

team-down: install
	$(BIN)/python -m flows.team down

team-backup: install
	$(BIN)/python -m flows.team backup
