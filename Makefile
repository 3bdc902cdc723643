# The README's two commands: `make dev` (the local stack) and `make test` (the test suite).
# Both install what they need into .venv first (llama-cpp-python compiles once: ~15 min on 2 cores).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
DEV_ARGS ?=

.PHONY: dev test test-fast bench synth lint clean browser

dev: $(STAMP)
	$(BIN)/strata dev $(DEV_ARGS)

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)  ## everything but the end-to-end and CDK tests
	$(BIN)/python -m pytest -m "not e2e and not infra" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

synth: $(STAMP)
	$(BIN)/python -m infra_cdk.app

lint: $(STAMP)
	$(BIN)/ruff check .

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install -e '.[models,local,infra,dev,report]'
	touch $(STAMP)

# The chat-page test drives the system's Chromium; as root on Debian/Ubuntu it is installed here,
# elsewhere the test is skipped with a note.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium not found: the chat-page browser test will be skipped (install chromium to run it)"; fi; }

clean:
	rm -rf $(VENV) .strata cdk.out
