# One venv, two jobs: `make demo` (index the bundled sample, search it) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lucene,plots,serve]'
	$(BIN)/pip install --quiet --no-deps 'pyserini==1.6.0'   # only its Anserini jar (Lucene 9.9.1)
	touch $(STAMP)

demo: $(STAMP)
	rm -rf runs/demo-index
	$(BIN)/vqgram index examples/photos --index runs/demo-index
	$(BIN)/vqgram search runs/demo-index --image examples/queries/tench.jpg -k 5
	$(BIN)/vqgram search runs/demo-index --image examples/queries/tench.jpg -k 5 --mode hybrid
	$(BIN)/vqgram search runs/demo-index --query 'label:parachute' -k 3
	$(BIN)/vqgram info runs/demo-index

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The search page's browser test drives Debian's chromium through chromium-driver; as root (CI) we
# install them, elsewhere the test skips and says why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "chromium / chromium-driver not installed: the browser test will skip"

clean:
	rm -rf runs $(VENV)
