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

.PHONY: help venv book test test-portable check-book grade exercises bench lock vendor clean wheel-test gpu-check
.DEFAULT_GOAL := help

help:
	@echo "make book        build the HTML book (executes every chapter) into _build/html"
	@echo "make test        unit tests + every chapter notebook + every exercise check"
	@echo "make test-portable  the tests again on another CPU's arithmetic (MKL/ATen code paths)"
	@echo "make check-book  open every built page in headless Chromium (offline checks)"
	@echo "make grade [EX=exercises/ex01_1_returns.ipynb]   grade your exercise notebook(s) (or a folder of submissions)"
	@echo "make exercises   regenerate the student notebooks from exercises/src"
	@echo "make bench       speed figures of the exact oracle"
	@echo "make gpu-check   on an NVIDIA GPU: the CUDA tests + 10M steps of HAPPO on VMAS transport (< 10 min)"
	@echo "make wheel-test  build the wheel, install it into a fresh venv, run every page outside the clone"

venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "harl_mini needs Python >= 3.10, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	# the Jupyter kernel "Python (harl-mini)" (name harl-mini) runs this venv, in any Jupyter front end
	$(PY) -m ipykernel install --user --name harl-mini --display-name "Python (harl-mini)"
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

# A normal (non-editable) install must run every page: build the wheel, install it with its
# dependencies (pinned by requirements.txt) into a fresh venv under /tmp, execute every page
# and exercise source from a temporary folder outside the clone (tests/wheel_install.py).
wheel-test: $(STAMP)
	$(RUN) $(PY) tests/wheel_install.py

# On a machine with an NVIDIA GPU (never run by CI): the CUDA tests, then 10M steps of HAPPO on
# VMAS transport on the GPU, recorded with a manifest naming the GPU in results/gpu/ (commit it).
# The pinned torch wheel of requirements.txt is CUDA-enabled on Linux x86-64.
GPU_OUT ?= results/gpu/happo_transport_cuda_s0
gpu-check: $(STAMP)
	@$(PY) -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "make gpu-check needs a CUDA GPU: torch.cuda.is_available() is False")'
	$(PY) -m pytest -q -p no:xdist tests/test_cuda.py tests/test_marl_games.py -k "cuda"
	$(PY) -m harl_mini train --config configs/vmas/transport/happo.yaml --device cuda --steps 1e7 --seed 0 \
	  --out $(GPU_OUT) --overwrite --no-tensorboard --checkpoint-every 0 --keep-checkpoints 1
	@$(PY) -c 'import json; m = json.load(open("$(GPU_OUT)/manifest.json")); print(f"gpu-check: {m[\"steps\"]:,} steps on {m[\"gpu\"]} in {m[\"wall_time\"]:.0f} s ({m[\"steps\"] / m[\"wall_time\"]:,.0f} steps/s), status {m[\"status\"]}")'

# Re-pin: install the direct requirements into a scratch venv and freeze it.
lock:
	rm -rf /tmp/harl_mini_lock && $(PYTHON) -m venv /tmp/harl_mini_lock
	/tmp/harl_mini_lock/bin/pip install --quiet torch==2.13.0 ".[book,test,mujoco]"
	( sed -n '1,/^torch==/p' requirements.txt; /tmp/harl_mini_lock/bin/pip freeze --exclude harl_mini | grep -v -E '^torch==' ) > requirements.txt.new
	mv requirements.txt.new requirements.txt

# Offline rendering: MathJax, vendored from npm (pinned). (Explorers need no widget library:
# harl_mini.viz.explorer gives each a static view with its own few lines of JavaScript.)
vendor:
	rm -rf /tmp/harl_mini_vendor && mkdir -p /tmp/harl_mini_vendor
	cd /tmp/harl_mini_vendor && npm pack --silent mathjax@3.2.2 >/dev/null \
	  && for f in *.tgz; do mkdir -p "$${f%.tgz}" && tar xzf "$$f" -C "$${f%.tgz}"; done
	rm -rf book/_vendor/mathjax && mkdir -p book/_vendor/mathjax/output/chtml/fonts book/_vendor/mathjax/input/tex
	M=/tmp/harl_mini_vendor/mathjax-3.2.2/package; cp $$M/LICENSE book/_vendor/mathjax/ \
	  && cp $$M/es5/tex-mml-chtml.js book/_vendor/mathjax/ && cp -r $$M/es5/ui $$M/es5/a11y book/_vendor/mathjax/ \
	  && cp -r $$M/es5/input/tex/extensions book/_vendor/mathjax/input/tex/ \
	  && cp -r $$M/es5/output/chtml/fonts/woff-v2 $$M/es5/output/chtml/fonts/tex.js book/_vendor/mathjax/output/chtml/fonts/

clean:
	rm -rf _build
