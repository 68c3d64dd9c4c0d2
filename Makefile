# Two commands a reader needs:  `make book`  and  `make test`.
# Both create .venv from the pinned requirements.txt on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# One BLAS/OpenMP thread per process: two notebooks run side by side on a 2-core
# machine, and oversubscribed torch threads are several times slower.
RUN    := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYDEVD_DISABLE_FILE_VALIDATION=1
JOBS   ?= 2
PYTEST_NB := --nbval-lax --nbval-current-env --nbval-cell-timeout=300

.PHONY: help venv book test test-portable check-book grade exercises bench lock vendor clean
.DEFAULT_GOAL := help

help:
	@echo "make book        build the HTML book (executes every chapter) into _build/html"
	@echo "make test        unit tests + every chapter notebook + every exercise check"
	@echo "make test-portable  the tests again on another CPU's arithmetic (MKL/ATen code paths)"
	@echo "make check-book  open every built page in headless Chromium (offline checks)"
	@echo "make grade [EX=exercises/ex00_returns.ipynb]   grade your exercise notebook(s)"
	@echo "make exercises   regenerate the student notebooks from exercises/src"
	@echo "make bench       speed figures of the exact oracle"

venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "harl_mini needs Python >= 3.10, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

book: $(STAMP)
	rm -rf _build/html _build/jupyter_execute _build/.doctrees
	$(RUN) $(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo; echo "Book built: file://$(CURDIR)/_build/html/index.html"

test: $(STAMP)
	$(RUN) $(PY) -m pytest -n $(JOBS) --dist loadfile $(PYTEST_NB) tests chapters book exercises/src --ignore=tests/browser

# The same tests on other arithmetic: MKL's "compatible" code path and ATen's scalar kernels
# round differently from the AVX-512 paths of this machine, as another CPU's BLAS would (it
# reproduces a null-space drift first seen on an AMD EPYC). A numerical test that passes only
# with one machine's rounding fails here. CI runs it after `make test`.
PORTABLE := MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default
test-portable: $(STAMP)
	$(RUN) $(PORTABLE) $(PY) -m pytest -n $(JOBS) --dist loadfile $(PYTEST_NB) tests chapters book exercises/src --ignore=tests/browser -q

check-book: $(STAMP)
	@test -f _build/html/index.html || { echo "No built book: run 'make book' first"; exit 1; }
	@test -x /usr/bin/chromium || { echo "Chromium is missing: install it with 'apt-get install chromium' (Debian/Ubuntu)"; exit 1; }
	$(RUN) $(PY) -m pytest tests/browser -p no:xdist

grade: $(STAMP)
	$(RUN) $(PY) -m harl_mini grade $(or $(EX),exercises/ex*.ipynb)

exercises: $(STAMP)
	$(PY) -m harl_mini exercises build

bench: $(STAMP)
	$(RUN) $(PY) -m harl_mini bench

# Re-pin: install the direct requirements into a scratch venv and freeze it.
lock:
	rm -rf /tmp/harl_mini_lock && $(PYTHON) -m venv /tmp/harl_mini_lock
	/tmp/harl_mini_lock/bin/pip install --quiet torch==2.13.0 ".[book,test,mujoco]"
	( sed -n '1,/^torch==/p' requirements.txt; /tmp/harl_mini_lock/bin/pip freeze --exclude harl_mini | grep -v -E '^torch==' ) > requirements.txt.new
	mv requirements.txt.new requirements.txt

# Offline rendering: MathJax and the ipywidgets embedder, vendored from npm (pinned).
vendor:
	rm -rf /tmp/harl_mini_vendor && mkdir -p /tmp/harl_mini_vendor
	cd /tmp/harl_mini_vendor && npm pack --silent mathjax@3.2.2 requirejs@2.3.8 @jupyter-widgets/html-manager@1.0.15 >/dev/null \
	  && for f in *.tgz; do mkdir -p "$${f%.tgz}" && tar xzf "$$f" -C "$${f%.tgz}"; done
	rm -rf book/_vendor/mathjax book/_vendor/widgets/*.js book/_vendor/widgets/*.woff* && mkdir -p book/_vendor/mathjax/output/chtml/fonts book/_vendor/mathjax/input/tex book/_vendor/widgets
	M=/tmp/harl_mini_vendor/mathjax-3.2.2/package; cp $$M/LICENSE book/_vendor/mathjax/ \
	  && cp $$M/es5/tex-mml-chtml.js book/_vendor/mathjax/ && cp -r $$M/es5/ui $$M/es5/a11y book/_vendor/mathjax/ \
	  && cp -r $$M/es5/input/tex/extensions book/_vendor/mathjax/input/tex/ \
	  && cp -r $$M/es5/output/chtml/fonts/woff-v2 $$M/es5/output/chtml/fonts/tex.js book/_vendor/mathjax/output/chtml/fonts/
	W=/tmp/harl_mini_vendor/jupyter-widgets-html-manager-1.0.15/package; cp $$W/dist/embed-amd.js $$W/dist/*.woff2 $$W/dist/*.woff book/_vendor/widgets/ \
	  && cp $$W/dist/embed.js.LICENSE.txt book/_vendor/widgets/embed-amd.js.LICENSE.txt
	cp /tmp/harl_mini_vendor/requirejs-2.3.8/package/require.js book/_vendor/widgets/
	git checkout -- book/_vendor/widgets/assets-path.js  # ours, not from npm

clean:
	rm -rf _build
