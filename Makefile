# Every target works on a fresh clone with only Python 3.11: it creates .venv on first use
# and reuses it afterwards. torch is pinned to the CPU wheel (an unpinned torch pulls CUDA).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test lint benchmark-quick benchmark clean install

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test]" "$(TORCH)"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(PY) examples/quickstart.py

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check skbary tests examples benchmarks
	$(VENV)/bin/ruff format --check skbary tests examples benchmarks

benchmark-quick: $(STAMP)
	MPLBACKEND=Agg $(PY) -m benchmarks.run --quick

benchmark: $(STAMP)
	MPLBACKEND=Agg $(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) build *.egg-info
