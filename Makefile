# The two commands of the README: `make run` and `make test`. Each installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install bench clean
.PHONY: browser

# Without SLACK_BOT_TOKEN, `make run` starts the sandbox: the real bot, a Slack-like console on
# localhost and local stand-ins for Azure (see README). With it, the bot itself.
run: $(VENV)/.installed node_modules/.installed
	@if [ -n "$$SLACK_BOT_TOKEN" ]; then exec $(BIN)/amlbot serve; else exec $(BIN)/python -m sandbox; fi

# Lint, types and the import contracts first (each configured in pyproject.toml), then the tests.
test: $(VENV)/.installed node_modules/.installed browser
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(VENV)/.installed node_modules/.installed

# Benchmarks, each figure beside a baseline measured in the same run (bench/README.md); ~10 min.
# `make bench BENCH_ARGS=--quick` is a one-minute smoke run; `BENCH_ARGS="--big-mb 256"` and so on.
bench: $(VENV)/.installed node_modules/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

# The project with its test extras, in a virtual environment of its own.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Azurite, the Azure Storage emulator the tests run against, pinned in package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Debian's Chromium, which the sandbox's browser test drives with Playwright (a test tool's own
# browser download cannot work here). Installed when missing and we are root; else that test skips.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the sandbox browser test"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; } \
			|| echo "note: could not install chromium: the sandbox browser test will be skipped"; \
	else echo "note: no /usr/bin/chromium and not root: the sandbox browser test will be skipped"; fi

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis .ruff_cache .mypy_cache .import_linter_cache .grimp_cache
