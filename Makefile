# Two commands for a fresh clone:
#   make quickstart   set everything up, run the whole chain offline on examples/quickstart.toml
#   make test         run the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export TOKENIZERS_PARALLELISM := false

.PHONY: quickstart test test-slow lint typecheck setup dictionaries constraints

setup: $(VENV)/.installed dictionaries

# The audit's spelling check reads the distribution's hunspell dictionaries (Debian packages).
HUNSPELL_PACKAGES := hunspell-es hunspell-ca hunspell-pt-pt hunspell-pt-br hunspell-fr-comprehensive hunspell-it hunspell-en-us hunspell-en-med
dictionaries:
	@if ! dpkg-query -W $(HUNSPELL_PACKAGES) >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(HUNSPELL_PACKAGES) >/dev/null; \
		else echo "spelling check: install the dictionaries for full coverage: sudo apt-get install $(HUNSPELL_PACKAGES)"; fi; \
	fi

# torch is pinned to the CPU wheel first: a loose torch would pull a multi-GB CUDA build.
# constraints.txt holds the exact versions the suite passed with (pyproject.toml keeps ranges).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	@# llama.cpp is compiled here, for a generic x86-64 (AVX2) target, never taken from pip's wheel cache:
	@# a native build picks AMX on Xeons that have it, and both a cached wheel and a native build
	@# crashed in libggml-cpu (general protection fault) on this machine; GGML_NATIVE=OFF runs.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install --quiet --no-cache-dir --no-binary llama-cpp-python \
		-c constraints.txt "llama-cpp-python[server]==0.3.36"
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,local-llm]"
	touch $@

# After an upgrade that the suite passed with: record the versions now installed.
constraints:
	{ sed -n '1,/^# ---$$/p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^clinassay' | sed 's/+cpu$$//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# Real clinician mentions (CodiEsp train, Spanish) become the audit's reference when a copy is beside the
# project; CodiEsp is never used for training.
CODIESP ?= ../shared/data/codiesp

quickstart: setup
	@if [ -d $(CODIESP)/train ] && [ ! -f runs/reference/codiesp-train.tsv ]; then \
		$(BIN)/clinassay data import-codiesp $(CODIESP)/train --out runs/reference/codiesp-train.tsv; fi
	$(BIN)/clinassay run --config examples/quickstart.toml

test: setup lint typecheck
	$(BIN)/python -m pytest -m "not slow and not llm"

# Lint everything (pyflakes, syntax, bugbear); the artifact models are also held to ruff's format.
FORMATTED := audit/summary.py terminology/languages.py retrieval/metrics_file.py retrieval/predictions.py clinassay/schemas.py tests/test_schemas.py tests/conftest.py
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check $(FORMATTED)

# mypy --strict on the typed artifacts and the chain. mypy cannot follow setuptools' package-dir mapping,
# so it reads a tree of links laid out as installed (build/typecheck/clinassay/audit -> audit, ...).
TYPED := clinassay/audit/summary.py clinassay/audit/gate.py clinassay/audit/manifest.py clinassay/schemas.py \
	clinassay/terminology/languages.py clinassay/terminology/protocol.py clinassay/retrieval/metrics_file.py clinassay/retrieval/predictions.py \
	clinassay/pipeline.py
typecheck: setup
	@rm -rf build/typecheck && mkdir -p build/typecheck/clinassay
	@cp -rs "$(CURDIR)/clinassay/." build/typecheck/clinassay/
	@for p in terminology generation audit retrieval reports; do ln -s "$(CURDIR)/$$p" build/typecheck/clinassay/$$p; done
	cd build/typecheck && "$(CURDIR)/$(BIN)/mypy" --config-file "$(CURDIR)/pyproject.toml" --cache-dir "$(CURDIR)/build/mypy-cache" $(TYPED)

# exit 5 means "no test selected": not a failure for this optional step
test-slow: setup
	$(BIN)/python -m pytest -m "slow or llm"; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]
