# Two commands do all the set-up on a fresh machine with Python 3.11 and make:
#   make demo   -> venv + install + build the demo evidence dossier into reports/
#   make test   -> venv with dev extras + the whole test suite
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: demo test venv dev bench lint clean chromium postgres

# Headless Chromium (Debian's package) renders the PDF dossier and runs the browser test.
# Best effort: when it cannot be installed (no root, no apt), rwe says so and skips the PDF.
CHROMIUM_STAMP := $(VENV)/.chromium-checked
$(CHROMIUM_STAMP): | $(PY)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	 { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	   { echo "installing Debian's chromium (PDF rendering, browser test) ..."; \
	     DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	     { apt-get update -q >/dev/null 2>&1 && \
	       DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	 echo "note: chromium not available; PDF rendering and the browser test will be skipped"
	@touch $@
chromium: $(CHROMIUM_STAMP)

# PostgreSQL (Debian's package): the tests start their own server on loopback in a temporary
# directory with initdb / pg_ctl. Best effort: without it those tests skip and say why.
POSTGRES_STAMP := $(VENV)/.postgres-checked
$(POSTGRES_STAMP): | $(PY)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	 { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	   { echo "installing Debian's postgresql (tests on a PostgreSQL server) ..."; \
	     DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 || \
	     { apt-get update -q >/dev/null 2>&1 && \
	       DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1; }; }; } || \
	 echo "note: PostgreSQL not available; the tests on a PostgreSQL server will be skipped"
	@touch $@
postgres: $(POSTGRES_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

# jupyterlab -> jupyter_events asks for jsonschema[format-nongpl], which brings rfc3987-syntax:
# jsonschema imports it (to check the "iri" string format, which no notebook or Jupyter schema
# uses) whenever it is imported, and importing it compiles some 35 Earley grammars: 2.1 s of CPU
# in every process that imports nbformat, i.e. every `rwe dossier`. Without it jsonschema skips
# that one format (jsonschema issue #1428, opendatahub-io/notebooks#3532); `pip check` is clean.
NO_SLOW_IRI := $(PIP) uninstall -y rfc3987-syntax >/dev/null 2>&1 || true

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PIP) install -e .
	@$(NO_SLOW_IRI)
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(STAMP_DEV): pyproject.toml $(STAMP_RUN)
	$(PIP) install -e '.[dev,scale]'
	@$(NO_SLOW_IRI)
	touch $@

venv: $(STAMP_RUN)
dev: $(STAMP_DEV)

# rwe is installed editable: compile its bytecode up front, so that every dossier kernel
# imports it instead of compiling it (also where PYTHONDONTWRITEBYTECODE is set)
BYTECODE := $(PY) -m compileall -q rwe

demo: $(STAMP_RUN) $(CHROMIUM_STAMP)
	@$(BYTECODE)
	$(VENV)/bin/rwe demo

test: $(STAMP_DEV) $(CHROMIUM_STAMP) $(POSTGRES_STAMP)
	@$(BYTECODE)
	$(PY) -m pytest -q

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check rwe tests benchmarks

bench: $(STAMP_DEV) $(POSTGRES_STAMP)
	@$(BYTECODE)
	$(PY) benchmarks/bench_subgroups.py all
	$(PY) benchmarks/bench_dossier.py
	$(PY) benchmarks/bench_sql_stream.py

clean:
	rm -rf $(VENV) build *.egg-info
