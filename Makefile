# worldmodels: `make help` lists the targets. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup web-setup train smoke test test-fast lint bench golden export evaluate play clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# an editable install copies hydra_plugins/ (a force-include) into site-packages: reinstall when it changes
$(BIN)/.installed: pyproject.toml hydra_plugins/worldmodels_schemas/__init__.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# the CPU wheel first: an unpinned torch would pull several GB of CUDA packages
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev]'
	touch $@

setup: $(BIN)/.installed ## create .venv and install the package with its dev tools

web/node_modules/.installed: web/package.json web/package-lock.json
	# npm install, not npm ci: npm 11 leaves rollup's per-platform optional packages out of the lock file, which npm ci rejects
	cd web && npm install --no-audit --no-fund
	touch $@

# Debian's chromium for the browser tests (apt-get needs root, as on CI); skipped when it is already there
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

web-setup: web/node_modules/.installed /usr/bin/chromium ## install the web player's npm packages and Debian's chromium

TRAIN_DIR := outputs/breakout/make_train-$(shell date +%Y-%m-%d_%H-%M-%S)

train: setup ## train the shipped Breakout model's recipe: experiment=breakout_game (10,000 steps), then experiment=breakout_game8 twice (8 context frames, 6,000 steps from the export before): about 3 h on 2 cores; ARGS="..." go to all three
	$(BIN)/python -m worldmodels.train experiment=breakout_game hydra.run.dir=$(TRAIN_DIR)/game4 $(ARGS)
	$(BIN)/python -m worldmodels.train experiment=breakout_game8 trainer.max_steps=6000 \
		model.init_from=$(TRAIN_DIR)/game4/export/breakout.onnx hydra.run.dir=$(TRAIN_DIR)/game8 $(ARGS)
	$(BIN)/python -m worldmodels.train experiment=breakout_game8 trainer.max_steps=6000 \
		model.init_from=$(TRAIN_DIR)/game8/export/breakout.onnx hydra.run.dir=$(TRAIN_DIR)/game8_more $(ARGS)

smoke: setup ## a seconds-long end-to-end run (debug=smoke) with every artifact
	$(BIN)/python -m worldmodels.train debug=smoke $(ARGS)

test: setup web-setup ## run the whole test suite (Python, TypeScript unit tests, headless-Chromium browser tests)
	$(BIN)/python -m pytest -q $(ARGS)

test-fast: setup ## the tests that do not train, sweep, run DDP or start Chromium, one process per core (2.5 min on 2 cores)
	$(BIN)/python -m pytest -q -m "not slow" -n auto $(ARGS)

lint: setup ## ruff over the package and tests
	$(BIN)/ruff check worldmodels tests

bench: setup ## simulator rows/s, training samples/s, denoiser ms/call vs the seed-scale net, Flappy decode (frame graph vs per token), dream env steps/s vs the real games
	$(BIN)/python -m worldmodels.bench $(ARGS)

golden: setup ## regenerate the Breakout golden traces (tests/golden/) after a deliberate simulator change
	$(BIN)/python -m worldmodels.breakout.golden

export: setup ## export a checkpoint to ONNX + manifest: make export ARGS=path/to/last.ckpt
	$(BIN)/python -m worldmodels.export $(ARGS)

evaluate: setup ## evaluate a checkpoint or .onnx against the true game: make evaluate ARGS=path/to/model.onnx
	$(BIN)/python -m worldmodels.evaluate $(ARGS)

play: setup web/node_modules/.installed ## build and serve the web player with the shipped models and your newest exports
	$(BIN)/python -m worldmodels.play $(ARGS)

clean: ## remove run outputs (outputs/, multirun/); keeps .venv
	rm -rf outputs multirun web/dist web/test-artifacts
