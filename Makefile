# Two commands do all the set-up on a fresh machine: `make book` and `make test`.
# Each creates .venv (if needed) and installs what it needs into it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build installed first: 2.13.0, whose wheel on this project's package index is the
# CPU-only build (an unpinned torch pulls several GB of CUDA packages). This is the one pin;
# pyproject.toml (and environment.yml, copied from it) state the range the code supports, which
# the pin must satisfy (tests/test_environment.py). On a CUDA machine: make ... TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
# Code that ruff checks: the library, its tests and benchmarks, the notebooks, the book tooling.
LINT_PATHS := srlib tests benchmarks notebooks tools book/_ext
PROFILE ?= quick
PYTEST_ARGS ?=

.PHONY: install browser test book rerun paper paper-dry check-book bench lint clean-book

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(PY) -m pip install -q -e ".[book,test]"
	touch $@

install: $(VENV)/.installed

# Chromium and its driver, for the browser check of the built book: used where present,
# installed with apt only as root on a Debian-like system; otherwise that one test is skipped
# (with its reason in pytest's summary) and every other test still runs.
browser:
	@if { command -v chromium || command -v chromium-browser; } >/dev/null && \
	    command -v chromedriver >/dev/null; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; then \
	  echo "browser: installing Debian's chromium and chromium-driver with apt-get"; \
	  { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	    echo "browser: apt-get failed; the browser check of the book will be skipped"; \
	else \
	  echo "browser: no chromium/chromedriver on PATH, and not root on a Debian-like system" \
	       "with apt-get to install them; the browser check of the book will be skipped"; \
	fi

# Unit tests, every notebook at the tiny profile, and the tiny book checked in Chromium.
test: install browser
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# The book at the default profile (quick), executed with the cache into _build/html.
# Before a cold build (no trained networks yet) it prints this CPU's training-step times and
# the predicted time of the build (srlib bench).
book: install
	@test -e results/quick/networks/N_diffu_8.pt || $(VENV)/bin/srlib bench --profile quick
	SRLIB_PROFILE=quick SRLIB_PROGRESS=terminal $(VENV)/bin/jupyter-book build . -W --keep-going

# Re-execute every notebook with another profile (papermill), build its own book:
#   make rerun PROFILE=paper   ->  results/paper/, _build/runs/paper/_build/html
rerun: install
	$(PY) -m tools.book rerun --profile $(PROFILE)

# The paper profile: its plan is checked against the samples first (seconds), so a size that
# would fail hours in is refused before anything runs.
paper:
	$(MAKE) install TORCH_SPEC="$(TORCH_SPEC)" TORCH_PIP_ARGS="$(TORCH_PIP_ARGS)"
	$(VENV)/bin/srlib plan --profile paper
	$(MAKE) rerun PROFILE=paper TORCH_SPEC="$(TORCH_SPEC)" TORCH_PIP_ARGS="$(TORCH_PIP_ARGS)"

# A measured dry run of the paper profile on this machine (800³, few of each; ~24 GB, hours on
# two cores): every stage's time and peak memory, and an estimate for the whole profile.
#   make paper-dry DRY_ARGS="--hr-size 160"     (quick try)   DRY_ARGS="--publish" (the book's table)
DRY_ARGS ?=
paper-dry: install
	$(PY) benchmarks/paper_dry_run.py $(DRY_ARGS)

check-book: install browser
	$(PY) -m tools.book check _build/html

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_stochastic.py
	$(PY) benchmarks/bench_transport.py

lint: install
	$(PY) -m ruff check $(LINT_PATHS)

clean-book:
	rm -rf _build
