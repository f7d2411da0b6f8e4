# vaecam: set-up, demo, tests and benchmarks. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# PyTorch is installed first and on its own, so that pip never looks for a newer release.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= outputs/demo
# Extra pytest arguments of 'make test': the 20 slowest tests are listed at the end.
PYTEST_ARGS ?= --durations=20

.PHONY: install demo test lint bench clean browser
CHROMIUM := /usr/bin/chromium

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet "setuptools>=64" wheel
	$(PY) -m pip install --quiet --no-build-isolation -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vaecam demo --out $(DEMO_OUT) --overwrite

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

test: $(STAMP) lint browser
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# Headless Chromium for tests/integration/test_report_browser.py, from Debian's packages, when
# missing and we are root; otherwise (or if apt fails) one line says the browser test is skipped.
browser:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u 2>/dev/null)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the browser test (apt-get)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium; } >/dev/null || true; \
	fi; \
	[ -x $(CHROMIUM) ] || echo "browser test will be skipped: $(CHROMIUM) is missing;" \
		"install it with: sudo apt-get install -y --no-install-recommends chromium"

bench: $(STAMP)
	@for b in $(filter-out benchmarks/timing.py,$(wildcard benchmarks/*.py)); do \
		echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
