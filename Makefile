# gi-book: build the book and run the tests.
#
#   make book              execute every notebook (profile: paper with CUDA, else cpu)
#                          and build the HTML book
#   make test              run the test suite (units, properties, a smoke book)
#   make dlg               execute one notebook (any notebook's file name works)
#   make book PROFILE=smoke
#
# Make is the cache: an executed notebook is redone only when its source, its
# profile file, the runner or a gi_lib module it imports (directly or not)
# changed; gi_lib.deps finds those modules from the import graph and writes
# them to $(BUILD)/<profile>/deps/<notebook>.d, as gcc -MMD does for C.
# Outputs live under $(BUILD)/<profile>/, so switching profile never reuses
# another profile's notebooks or results.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BUILD ?= _build
PROFILE ?=
# Extra flags for gi_lib.runner, e.g. RUNNER_FLAGS=--log-output to watch progress.
RUNNER_FLAGS ?=
# Extra flags for benchmarks/bench_attacks.py, e.g. BENCH_FLAGS=--compile.
BENCH_FLAGS ?=

# PY=/path/to/python on the command line uses that interpreter as it is;
# otherwise the first use creates $(VENV) and installs into it, once.
ifeq ($(origin PY),command line)
INSTALL :=
else
PY := $(VENV)/bin/python
INSTALL := $(VENV)/.gi-book-installed
endif

NOTEBOOK_SOURCES := $(sort $(wildcard notebooks/attacks/*.py notebooks/defenses/*.py notebooks/evaluation/*.py))
# The longest notebooks first: `make -j N` starts jobs in this order, and the
# cpu book's wall time under -j 2 is bounded below by its longest page (the
# evaluation, about 28 minutes of one core); started last, it would run alone.
LONGEST_FIRST := evaluation/attacks_vs_defenses attacks/gradinversion attacks/gias evaluation/aggregation_leakage
ALL_KEYS := $(NOTEBOOK_SOURCES:notebooks/%.py=%)
NOTEBOOK_KEYS := $(foreach key,$(LONGEST_FIRST),$(filter $(key),$(ALL_KEYS))) $(filter-out $(LONGEST_FIRST),$(ALL_KEYS))
NOTEBOOK_NAMES := $(notdir $(NOTEBOOK_KEYS))
ifneq ($(words $(NOTEBOOK_NAMES)),$(words $(sort $(NOTEBOOK_NAMES))))
$(error Two notebooks share a file name ($(NOTEBOOK_KEYS)); names must be unique, they name the make targets and results files)
endif
# Every library module: a notebook's dependency file is redone when one changes
# (cheap: it only parses imports). A notebook itself depends on the modules it
# imports; no notebook imports the book generator, so editing it only rebuilds
# the HTML.
LIB_SOURCES := $(shell find gi_lib -name '*.py' -not -path '*/__pycache__/*')
# Goals that run no notebook, and so need no dependency files.
NO_DEPS_GOALS := help install test lint bench clean sweep
# The built book, in a browser and published: these read an existing build and
# never execute a notebook (see the end of this file).
NO_DEPS_GOALS += test-browser publish chromium book-html
# Jupyter Book's command line through $(PY), so that PY= alone picks the environment.
JUPYTER_BOOK = $(PY) -c 'import sys; from jupyter_book.cli.main import main; sys.exit(main())'

.PHONY: help install test lint notebooks book book-html bench clean $(NOTEBOOK_NAMES)

help:
	@echo "make book        execute the notebooks and build the book (PROFILE=smoke|cpu|paper)"
	@echo "make test        run the tests"
	@echo "make notebooks   execute the notebooks only"
	@echo "make book-html   rebuild the book's HTML from the notebooks already executed"
	@echo "make test-browser  check the built book in headless Chromium (PROFILE, default smoke)"
	@echo "make publish     push the built book to the gh-pages branch (PROFILE, default smoke)"
	@echo "make -j N book   executes N notebooks at a time"
	@echo "make <name>      execute one notebook: $(NOTEBOOK_NAMES)"
	@echo "make bench       attack step timings"
	@echo "make lint        ruff check and format check"
	@echo "make clean       remove $(BUILD)/"
	@echo "Profile: $(or $(PROFILE),auto (paper when CUDA is available, else cpu)); outputs in $(BUILD)/<profile>/"

install: $(INSTALL)

ifneq ($(INSTALL),)
$(INSTALL): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install -e .
	touch $@
endif

test: $(INSTALL)
	$(PY) -m pytest

lint: $(INSTALL)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(INSTALL)
	$(PY) benchmarks/bench_attacks.py $(BENCH_FLAGS)
	$(PY) benchmarks/bench_aggregation.py

clean:
	rm -rf $(BUILD)

ifeq ($(strip $(PROFILE)),)
# No profile given: ask torch (from the environment, installed first if need
# be) whether CUDA is there, then run the same goal with that profile.
book book-html notebooks $(NOTEBOOK_NAMES): $(INSTALL)
	@profile=$$($(PY) -c 'import torch; print("paper" if torch.cuda.is_available() else "cpu")'); \
	echo "PROFILE=$$profile (chosen automatically; set PROFILE= to override)"; \
	$(MAKE) --no-print-directory $@ PROFILE=$$profile

else
PROFILE_FILE := notebooks/profiles/$(PROFILE).yaml
ifeq ($(wildcard $(PROFILE_FILE)),)
ifneq ($(filter book book-html notebooks $(NOTEBOOK_NAMES),$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
$(error Unknown PROFILE=$(PROFILE): no $(PROFILE_FILE). Valid profiles: $(basename $(notdir $(wildcard notebooks/profiles/*.yaml))))
endif
endif

OUT := $(BUILD)/$(PROFILE)
EXECUTED := $(NOTEBOOK_KEYS:%=$(OUT)/notebooks/%.ipynb)
BOOK_SRC := $(OUT)/book
BOOK_HTML := $(OUT)/_build/html
BOOK_PAGES := $(shell find book -type f)

notebooks: $(EXECUTED)

# One target per notebook, named after its file: `make dlg`.
define notebook_target
$(notdir $(1)): $(OUT)/notebooks/$(1).ipynb
endef
$(foreach key,$(NOTEBOOK_KEYS),$(eval $(call notebook_target,$(key))))

# The runner writes the notebook atomically and deletes a stale results file
# first, so a failed (or interrupted) run leaves neither behind. The gi_lib
# modules the notebook imports come from its dependency file, included below.
$(OUT)/notebooks/%.ipynb: notebooks/%.py $(PROFILE_FILE) gi_lib/runner.py | $(INSTALL)
	@echo "running $< with the $(PROFILE) profile"
	$(PY) -m gi_lib.runner $< --profile $(PROFILE) --output $@ --results-dir $(OUT)/results $(RUNNER_FLAGS)

# `target: modules...` plus an empty rule per module, so that deleting a module
# does not stop make. The executed notebook does not depend on this file: a
# regenerated list that names no changed module reruns nothing.
$(OUT)/deps/%.d: notebooks/%.py $(LIB_SOURCES) | $(INSTALL)
	$(PY) -m gi_lib.deps $< --target $(OUT)/notebooks/$*.ipynb --output $@

ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
-include $(NOTEBOOK_KEYS:%=$(OUT)/deps/%.d)
endif

book: $(BOOK_HTML)/index.html
	@echo "The book: $(abspath $(BOOK_HTML))/index.html"

# The book source is assembled afresh from book/, the executed notebooks and
# what gi_lib.book generates: the table of contents (_toc.yml, from
# gi_lib/papers.py), the seed table, the scorecard and each notebook page's
# "run it yourself" section (its source and executed notebook to download,
# its profile, parameters and wall time, the command that reruns it). Jupyter
# Book only renders (it never executes) and every page is rebuilt (--all), so
# a warning is never hidden by an earlier build.
# $(call build_book,notebook keys): the recipe, for those notebooks.
define build_book
	rm -rf $(BOOK_SRC) $(BOOK_HTML)
	mkdir -p $(BOOK_SRC)
	cp -R book/. $(BOOK_SRC)/
	for key in $(1); do \
	  mkdir -p "$(BOOK_SRC)/notebooks/$$(dirname "$$key")"; \
	  cp "$(OUT)/notebooks/$$key.ipynb" "$(BOOK_SRC)/notebooks/$$key.ipynb"; \
	done
	$(PY) -m gi_lib.book --results-dir $(OUT)/results --out $(BOOK_SRC) --sources notebooks $(foreach key,$(1),--expect $(notdir $(key)))
	$(JUPYTER_BOOK) build $(BOOK_SRC) --path-output $(OUT) --all -W -n --keep-going
	test -f $(BOOK_HTML)/index.html
endef

$(BOOK_HTML)/index.html: $(EXECUTED) $(BOOK_PAGES) gi_lib/book.py gi_lib/papers.py gi_lib/results.py | $(INSTALL)
	$(call build_book,$(NOTEBOOK_KEYS))

# The HTML alone, from the notebooks executed so far (none is run or rerun):
# for work on book/, its CSS or gi_lib/book.py.
book-html: | $(INSTALL)
	$(call build_book,$(patsubst $(OUT)/notebooks/%.ipynb,%,$(wildcard $(EXECUTED))))
	@echo "The book: $(abspath $(BOOK_HTML))/index.html"

endif

# --- parameter sweeps on Dask (gi_lib.sweep) ---------------------------------
#   make sweep NOTEBOOK=notebooks/attacks/dlg.py GRID="seed=0,1,2,3" PROFILE=smoke
#   GRID holds one NAME=V1,V2 axis per word; SWEEP_OUT the sweep's folder;
#   SCHEDULER=tcp://host:8786 uses an existing Dask scheduler, WORKERS=N sizes
#   the local cluster; SWEEP_FLAGS passes more (e.g. --metric ssim, -p NAME VALUE).
NOTEBOOK ?=
GRID ?=
SCHEDULER ?=
WORKERS ?=
SWEEP_FLAGS ?=
SWEEP_PROFILE = $(or $(strip $(PROFILE)),cpu)
SWEEP_OUT ?= $(BUILD)/sweeps/$(SWEEP_PROFILE)/$(basename $(notdir $(NOTEBOOK)))

.PHONY: sweep
sweep: $(INSTALL)
	@test -n "$(NOTEBOOK)" || { echo 'make sweep needs NOTEBOOK=notebooks/<category>/<name>.py'; exit 2; }
	@test -n "$(GRID)" || { echo 'make sweep needs GRID="name=v1,v2 ..."'; exit 2; }
	$(PY) -m gi_lib.sweep $(NOTEBOOK) --profile $(SWEEP_PROFILE) --output $(SWEEP_OUT) \
	  $(foreach axis,$(GRID),--grid '$(axis)') \
	  $(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(if $(WORKERS),--workers $(WORKERS)) \
	  $(SWEEP_FLAGS)

# ---------------------------------------------------------------------------
# The built book in a browser, and published. Neither builds the book: run
# `make book PROFILE=...` first. Both take the book of PROFILE (smoke when
# none is given, the book CI builds).
SITE_PROFILE := $(or $(strip $(PROFILE)),smoke)
SITE_HTML := $(BUILD)/$(SITE_PROFILE)/_build/html
SITE_TOC := $(BUILD)/$(SITE_PROFILE)/book/_toc.yml
# Screenshots of the introduction and of a paper page (a CI artefact).
SITE_SHOTS := $(BUILD)/$(SITE_PROFILE)/browser
# The browser Playwright drives: never downloaded, taken from the system
# (Debian's chromium, installed here when missing and run as root).
CHROMIUM ?= chromium
PUBLISH_REMOTE ?= origin
PUBLISH_BRANCH ?= gh-pages
define need_site
	@test -f $(SITE_HTML)/index.html || { \
	  echo "error: no built book at $(SITE_HTML); run make book PROFILE=$(SITE_PROFILE) first" >&2; exit 1; }
endef

.PHONY: test-browser publish chromium

chromium:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium with apt-get"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y --no-install-recommends chromium \
	      || { apt-get update && apt-get install -y --no-install-recommends chromium; }; \
	  else \
	    echo "error: no $(CHROMIUM) on the PATH; install Chromium (Debian: apt-get install chromium) or set CHROMIUM=<executable>" >&2; \
	    exit 1; \
	  fi; \
	  command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	    echo "error: Debian's chromium is installed, but CHROMIUM=$(CHROMIUM) is not on the PATH" >&2; exit 1; }; }

test-browser: chromium | $(INSTALL)
	$(need_site)
	$(PY) -m gi_lib.browser_check $(SITE_HTML) --toc $(SITE_TOC) --screenshots $(SITE_SHOTS) --chromium $(CHROMIUM)

# ghp-import commits the HTML (with .nojekyll, for the _static folders) onto
# PUBLISH_BRANCH of this clone and pushes it to PUBLISH_REMOTE.
publish: | $(INSTALL)
	$(need_site)
	$(PY) -m ghp_import --no-jekyll --push --force --remote $(PUBLISH_REMOTE) --branch $(PUBLISH_BRANCH) \
	  --message "The $(SITE_PROFILE) book, built from $$(git rev-parse --short HEAD 2>/dev/null || echo 'an unknown commit')" \
	  $(SITE_HTML)
	@echo "published $(SITE_HTML) to the $(PUBLISH_BRANCH) branch of $(PUBLISH_REMOTE)"
