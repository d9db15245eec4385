# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# exact versions from constraints.txt: the CPU build of torch (an unpinned
	# torch pulls a multi-GB CUDA build) and wheels that install in seconds
	$(BIN)/pip install --quiet -c constraints.txt torch
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,project,onnx,ray]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python -m spacy project run all .

test: install
	$(BIN)/python -m pytest
