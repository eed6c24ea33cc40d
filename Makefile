# citeqa: `make run` serves the sample corpus, `make test` runs the whole suite.
# Both set up a project-local virtual environment first and are safe to repeat.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: setup run test lint browser bench-index bench-scale clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: otherwise pip pulls several GB of CUDA wheels
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev,bench]"
	rm -f $(VENV)/.installed-*
	# export the embedding model to ONNX now (cached in ~/.cache/citeqa), not on the first request
	$(VENV)/bin/citeqa model
	touch $@

run: setup
	$(VENV)/bin/citeqa serve --load data/sample-news

# Debian's chromium for the chat-page test (never a browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: setup browser
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check index qa api eval tests
	$(VENV)/bin/mypy index qa api

# 10k/30k/100k-chunk collections from SciFact (../shared/data/scifact), built once under
# ../scale-cache and reused; niced: it runs for a long time on a small machine.
bench-scale: setup
	nice -n 19 $(PY) -m eval.bench_scale --out ../scale-cache/bench-scale.json

clean:
	rm -rf $(VENV) .citeqa
