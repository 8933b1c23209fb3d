# Two commands do everything on a fresh machine (see README):
#   make demo   set up, then run the local demo
#   make test   set up, then run the whole test suite (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHECKOV := .tools/checkov/bin/checkov
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup demo test lint bench corpus evaluate clean system-deps

setup: $(STAMP) system-deps node_modules/.installed $(CHECKOV)

# checkov (template policy checks beside cfn-lint and cdk-nag) pins boto3 1.35: its own venv.
$(CHECKOV):
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/python -m pip install --quiet checkov==3.3.30

# The AWS CDK CLI (cdk synth / cdk deploy), pinned in package.json and package-lock.json.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent && touch $@; \
	  else echo "note: npm is missing; the cdk CLI (package.json) is not installed"; fi

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-*; touch $@

# The ffmpeg CLI is the reference peer (evaluate --vs-ffmpeg, the speed benchmark). avmon itself
# decodes with PyAV's bundled FFmpeg and does not need it.
system-deps:
	@command -v ffmpeg >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing the ffmpeg CLI (Debian package ffmpeg)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else echo "note: the ffmpeg CLI is missing; install Debian's 'ffmpeg' for the comparisons"; fi; }
	@# chromium renders the benchmark's HTML report in a test (tests/functional/test_report_page.py)
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing a headless browser (Debian package chromium)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium is missing; the report page's browser test will be skipped"; fi; }

demo: setup
	$(BIN)/python -m avmon demo

lint: $(STAMP)
	$(BIN)/ruff check avmon functions cdk tests benchmarks app.py
	$(BIN)/mypy avmon functions cdk
	$(BIN)/lint-imports

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

test: setup lint
	$(BIN)/pytest -n 2 -q --durations=5

corpus: setup
	$(BIN)/avmon corpus corpus

evaluate: corpus
	$(BIN)/avmon evaluate corpus --vs-ffmpeg

bench: setup
	$(BIN)/python benchmarks/speed.py

clean:
	rm -rf $(VENV) .tools node_modules corpus bench-out out cdk.out
