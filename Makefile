# One venv, two jobs: `make demo` (index the bundled sample, search it) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lucene,plots,bench]'
	$(BIN)/pip install --quiet --no-deps 'pyserini==1.6.0'   # only its Anserini jar (Lucene 9.9.1)
	touch $(STAMP)

demo: $(STAMP)
	rm -rf runs/demo-index
	$(BIN)/vqgram index examples/photos --index runs/demo-index
	$(BIN)/vqgram search runs/demo-index --image examples/queries/tench.jpg -k 5
	$(BIN)/vqgram search runs/demo-index --image examples/queries/tench.jpg -k 5 --mode hybrid
	$(BIN)/vqgram search runs/demo-index --query 'label:parachute' -k 3
	$(BIN)/vqgram info runs/demo-index

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf runs $(VENV)
