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
	$(PY) -m pip install --quiet -e ".[dev,clevr,train,ray]"
	touch $@

# The main job end to end on built-in data: pairs from all three sources, merged into one Hub-layout dataset,
# exported to the original release's layout, its "what changed?" questions, a 2-step Iterative-SPO run of a tiny
# offline Qwen2.5-VL on it, the checkpoint exported for evaluators, and evaluated against its start on held-out charts.
demo: $(INSTALLED)
	rm -rf $(DEMO)/all $(DEMO)/vision-zero-layout $(DEMO)/tiny-model $(DEMO)/train $(DEMO)/qa $(DEMO)/eval \
		$(DEMO)/tiny-qwen2.5-vl-step2
	$(VZERO) chart --out $(DEMO)/chart --num 48 --seed 0 --workers 2 --shard-size 24
	$(VZERO) clevr --out $(DEMO)/clevr --num 8 --seed 0 --workers 2 --shard-size 4
	$(VZERO) realworld --out $(DEMO)/realworld --num 24 --seed 0 --workers 2 --max-side 640 --shard-size 12
	$(VZERO) merge $(DEMO)/chart $(DEMO)/clevr $(DEMO)/realworld --out $(DEMO)/all
	$(VZERO) info $(DEMO)/all
	$(VZERO) export $(DEMO)/all --format vision-zero --out $(DEMO)/vision-zero-layout
	$(VZERO) make-tiny-model --out $(DEMO)/tiny-model
	$(VZERO) qa $(DEMO)/all --out $(DEMO)/qa
	$(VZERO) train --data $(DEMO)/all --model $(DEMO)/tiny-model --out $(DEMO)/train --recipe tiny-cpu --max-steps 2
	$(VZERO) export-model $(DEMO)/train --out $(DEMO)/tiny-qwen2.5-vl-step2
	$(VZERO) chart --out $(DEMO)/heldout --num 16 --seed 1 --workers 2 --shard-size 16
	$(VZERO) eval --model $(DEMO)/tiny-model --model $(DEMO)/tiny-qwen2.5-vl-step2 --data $(DEMO)/heldout --games 16 \
		--recipe tiny-cpu --out $(DEMO)/eval
	@echo
	@echo "Look at: $(DEMO)/{chart,clevr,realworld}/preview.png (contact sheets), $(DEMO)/all/README.md (dataset card),"
	@echo "         $(DEMO)/all/data/<domain>/*.parquet (pairs), $(DEMO)/*/report.jsonl (retries and skips),"
	@echo "         $(DEMO)/vision-zero-layout/ (<id>_original.png, <id>_modified.png, <id>.json),"
	@echo "         $(DEMO)/train/metrics.jsonl (per-step metrics), $(DEMO)/train/checkpoints/ (HF model folders),"
	@echo "         $(DEMO)/qa/ (what-changed questions), $(DEMO)/eval/eval.md (start vs 2-step checkpoint)."

test: $(INSTALLED)
	$(PY) -m pytest -m "not slow and not gpu" -q

test-slow: $(INSTALLED)
	$(PY) -m pytest -m "slow" -q

lint: $(INSTALLED)
	$(VENV)/bin/ruff check cli.py datagen chart_edit clevr_scenes realworld_edit training tests bench examples
	$(VENV)/bin/ruff format --check cli.py datagen chart_edit clevr_scenes realworld_edit training tests bench examples

bench: $(INSTALLED)
	$(PY) bench/bench_chart.py
	$(PY) bench/bench_clevr.py
	$(PY) bench/bench_realworld.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_ray.py

clean:
	rm -rf $(DEMO) .pytest_cache
