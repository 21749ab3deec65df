# Two entry points for a fresh machine: `make demo` and `make test`. Each creates or refreshes the
# virtualenv in .venv and installs what it needs first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VZERO := $(VENV)/bin/vzero
INSTALLED := $(VENV)/.installed-core
DEMO := demo_out

.PHONY: demo test test-slow lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first: pinned to 2.13.0 it takes the local CPU wheel here (a CUDA build on GPU machines); installed
# after `transformers`, an unpinned torch would pull the multi-GB CUDA build everywhere.
$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,clevr,train]"
	touch $@

demo: $(INSTALLED)
	$(VZERO) chart --out $(DEMO)/chart --num 48 --seed 0 --workers 2 --shard-size 24
	$(VZERO) info $(DEMO)/chart
	@echo
	@echo "Look at: $(DEMO)/chart/preview.png (contact sheet), $(DEMO)/chart/README.md (dataset card),"
	@echo "         $(DEMO)/chart/data/*.parquet (pairs), $(DEMO)/chart/report.jsonl (retries and skips)."

test: $(INSTALLED)
	$(PY) -m pytest -m "not slow and not gpu" -q

test-slow: $(INSTALLED)
	$(PY) -m pytest -m "slow" -q

lint: $(INSTALLED)
	$(VENV)/bin/ruff check cli.py datagen chart_edit clevr_scenes realworld_edit training tests bench
	$(VENV)/bin/ruff format --check cli.py datagen chart_edit clevr_scenes realworld_edit training tests bench

bench: $(INSTALLED)
	$(PY) bench/bench_chart.py

clean:
	rm -rf $(DEMO) .pytest_cache
