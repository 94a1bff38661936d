# graphcnn: two commands do all set-up on a fresh machine.
#   make demo   create .venv, install graphcnn, profile and check a zoo model
#   make test   create .venv, install graphcnn with test dependencies, run the test suite
#   make test-fast   the same without the tests marked slow (a couple of CPU-minutes)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision are test-only references (the core never imports them); this pair is the one
# served from local disk on our machines.
TORCH  ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test test-fast venv dev typecheck lint bench clean

$(BIN)/graphcnn: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

venv: $(BIN)/graphcnn

$(VENV)/.dev: $(BIN)/graphcnn
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test,onnx]'
	@touch $@

dev: $(VENV)/.dev

demo: venv
	$(BIN)/graphcnn check resnet50
	$(BIN)/graphcnn profile resnet50 --depth 1

test: dev
	$(BIN)/python -m pytest -q -n 2 tests

test-fast: dev
	$(BIN)/python -m pytest -q -n 2 -m "not slow" tests

typecheck: dev
	tools/typecheck

lint: dev
	$(BIN)/ruff check graphcnn passes backends tests tools

bench: dev
	$(BIN)/python tools/bench_profile.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
