# The two commands a newcomer needs: `make demo` runs the line, `make test` runs the tests.
# `make run` runs it for real from .env: the release step, then web, worker and cron.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean run

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The Procfile's release line (honcho exits with its status), then web, worker and cron, all with the settings in $(ENV_FILE). Web is named
# first so it listens on $PORT itself (honcho gives each later line PORT+100); the Procfile's commands
# are found in .venv/bin.
ENV_FILE ?= .env
run: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -e $(ENV_FILE) release
	PATH="$(abspath $(BIN)):$$PATH" exec $(BIN)/honcho start -e $(ENV_FILE) web worker cron

lint: $(STAMP)
	$(BIN)/ruff check voice workers scripts tests

bench: $(STAMP)
	$(BIN)/python scripts/bench_webhooks.py $(ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
