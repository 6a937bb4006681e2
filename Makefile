# Two commands do all the set-up on a fresh machine with Python 3.11 and make:
#   make demo   -> venv + install + build the demo evidence dossier into reports/
#   make test   -> venv with dev extras + the whole test suite
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: demo test venv dev bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PIP) install -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(STAMP_DEV): pyproject.toml $(STAMP_RUN)
	$(PIP) install -e '.[dev,scale]'
	touch $@

venv: $(STAMP_RUN)
dev: $(STAMP_DEV)

demo: $(STAMP_RUN)
	$(VENV)/bin/rwe demo

test: $(STAMP_DEV)
	$(PY) -m pytest -q

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check rwe tests benchmarks

bench: $(STAMP_DEV)
	$(PY) benchmarks/bench_subgroups.py

clean:
	rm -rf $(VENV) build *.egg-info
