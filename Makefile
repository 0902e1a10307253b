# Two commands do all the set-up on a fresh machine: `make book` and `make test`.
# Each creates .venv (if needed) and installs what it needs into it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; override e.g. TORCH_SPEC="torch" on a CUDA machine.
TORCH_SPEC ?= torch==2.13.0
PROFILE ?= quick
PYTEST_ARGS ?=

.PHONY: install test book paper bench lint clean-book

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[book,test]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m ruff check srlib tests benchmarks
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

book: install
	SRLIB_PROFILE=$(PROFILE) $(VENV)/bin/jupyter-book build . -W --keep-going

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_stochastic.py
	$(PY) benchmarks/bench_transport.py

lint: install
	$(PY) -m ruff check srlib tests benchmarks

clean-book:
	rm -rf _build
