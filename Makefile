# Two commands do all the set-up on a fresh machine: `make book` and `make test`.
# Each creates .venv (if needed) and installs what it needs into it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; override e.g. TORCH_SPEC="torch" on a CUDA machine.
TORCH_SPEC ?= torch==2.13.0
PROFILE ?= quick
PYTEST_ARGS ?=

.PHONY: install browser test book rerun paper check-book bench lint clean-book

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[book,test]"
	touch $@

install: $(VENV)/.installed

# Debian's Chromium and its driver, for the browser check of the built book.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)

# Unit tests, every notebook at the tiny profile, and the tiny book checked in Chromium.
test: install browser
	$(PY) -m ruff check srlib tests benchmarks
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

# The book at the default profile (quick), executed with the cache into _build/html.
book: install
	SRLIB_PROFILE=quick $(VENV)/bin/jupyter-book build . -W --keep-going

# Re-execute every notebook with another profile (papermill), build its own book:
#   make rerun PROFILE=paper   ->  results/paper/, _build/runs/paper/_build/html
rerun: install
	$(PY) -m srlib.book rerun --profile $(PROFILE)

paper:
	$(MAKE) rerun PROFILE=paper TORCH_SPEC="$(TORCH_SPEC)"

check-book: install browser
	$(PY) -m srlib.book check _build/html

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_stochastic.py
	$(PY) benchmarks/bench_transport.py

lint: install
	$(PY) -m ruff check srlib tests benchmarks

clean-book:
	rm -rf _build
