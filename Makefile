# kefu: two commands do everything.
#   make demo   set up, pull the models, ingest the sample store, start the chat server
#   make test   set up, pull the test models, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# portable llama.cpp build (AVX2/FMA), so a cached wheel runs on any x86-64 machine here
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: setup demo test lint bench clean models models-test browser postgres

$(BIN)/kefu: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/kefu

setup: $(BIN)/kefu

models: setup
	$(BIN)/kefu models pull embeddinggemma-300m qwen2.5-coder-1.5b

models-test: setup
	$(BIN)/kefu models pull embeddinggemma-300m qwen2.5-coder-0.5b

# The demo admin key is random per run and printed, so the admin API never runs on the example key.
# The sample orders are dated relative to today, and the sample personalisation rules apply.
COMMERCE := examples/sample_store/commerce
demo: export KEFU_COMMERCE__RULES_FILE ?= $(CURDIR)/$(COMMERCE)/personalisation.yaml
demo: models
	$(BIN)/kefu ingest sync examples/sample_store
	$(BIN)/kefu store import $(COMMERCE)/orders.csv $(COMMERCE)/customers.csv $(COMMERCE)/tracking.csv --rebase-dates
	$(BIN)/kefu ask "¿Cuánto tarda el envío a México?" --country MX
	$(BIN)/kefu ask "Where is my order #1042?" --customer maria.gonzalez@example.com
	@KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(24))'); \
	  echo "agent/admin API key for this demo: $$KEY"; \
	  KEFU_SERVER__ADMIN_API_KEY=$$KEY $(BIN)/kefu serve

# Headless Chromium for the widget's browser test (Debian's package, driven by Playwright),
# installed when missing and root or passwordless sudo allows; otherwise that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "chromium is missing and needs root or sudo to install: the browser test will skip"; exit 0; fi; \
	  command -v apt-get >/dev/null 2>&1 || { echo "chromium is missing and there is no apt-get: the browser test will skip"; exit 0; }; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	    || { $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
	    || echo "could not install chromium: the browser test will skip"; }

# PostgreSQL for the shared-database tests (Debian's package; the tests start their own
# throw-away server on 127.0.0.1), installed when missing like chromium; otherwise they skip.
postgres:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "postgresql is missing and needs root or sudo to install: the PostgreSQL tests will skip"; exit 0; fi; \
	  command -v apt-get >/dev/null 2>&1 || { echo "postgresql is missing and there is no apt-get: the PostgreSQL tests will skip"; exit 0; }; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql \
	    || { $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } \
	    || echo "could not install postgresql: the PostgreSQL tests will skip"; }

test: models-test browser postgres
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: models
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.answer
	$(BIN)/python -m bench.load

clean:
	rm -rf $(VENV) var
