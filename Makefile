# socklab: `make help` lists the targets. Everything sets itself up: the
# virtual environment (.venv) and the images are made on first use.

.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-host
LABS := $(notdir $(patsubst %/lab.toml,%,$(wildcard labs/*/lab.toml)))
LAB ?= ftp

# Compose v2 (the `docker compose` plugin) if it works, else v1 (`docker-compose`)
# if it is installed. v1 is not run to ask: it is a Python program, and every
# make would pay its half-second start.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || \
             (command -v docker-compose >/dev/null && echo docker-compose))
export SOCKLAB_COMPOSE := $(COMPOSE)
COMPOSE_RUN = $(COMPOSE) -p socklab -f docker-compose.yml

.PHONY: help venv images up down shell-client shell-server shell-inspector test bench clean grade

help: ## list the targets
	@echo "socklab: socket programming across real containers"
	@echo
	@grep -hE '^[a-zA-Z%_ -]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([^:]+):[^#]*## (.*)/  make \1|\2/' | column -t -s '|'
	@echo
	@echo "  labs: $(LABS)    compose: $(or $(COMPOSE),none found)"

$(STAMP): pyproject.toml
	@echo "venv: creating $(VENV) and installing socklab with its host tools (docker, pytest, testcontainers)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[host]'
	@touch $@

venv: $(STAMP) ## create the virtual environment (done by every target that needs it)

images: $(STAMP) ## build the images that are missing or out of date
	$(PY) -m socklab.host images

lab-%: $(STAMP) ## run a lab end to end: lab-ftp (and lab-echo, lab-shell, lab-udp, lab-http)
	$(PY) -m socklab.host lab $*

check-%: $(STAMP) ## your code through a lab's checks: make check-ftp SOLUTION=folder (default: the starter; or reference)
	$(PY) -m socklab.host check $* --solution "$(SOLUTION)"

grade: $(STAMP) ## grade a class: make grade LAB=ftp SOLUTIONS=dir/ (one folder per student; a CSV of scores)
	@test -n "$(SOLUTIONS)" || { echo "grade: say where the solutions are: make grade LAB=ftp SOLUTIONS=dir/"; exit 2; }
	$(PY) -m socklab.host grade $(LAB) "$(SOLUTIONS)" $(if $(TIME_LIMIT),--time-limit $(TIME_LIMIT))

up: $(STAMP) ## start a lab and leave it running: make up LAB=ftp
	$(PY) -m socklab.host up $(LAB)

down: $(STAMP) ## stop the running lab, removing its containers and network
	$(PY) -m socklab.host down

shell-client shell-server shell-inspector: shell-%: ## open a shell in a role of the running lab (make up first)
	@$(COMPOSE_RUN) ps -q $* 2>/dev/null | grep -q . || { echo "no lab is running: start one with 'make up LAB=ftp'"; exit 1; }
	$(COMPOSE_RUN) exec $* bash

test: $(STAMP) ## run the test suite (unit tests and the cross-container tests)
	$(PY) -m pytest

.PHONY: fuzz
FUZZ_INPUTS ?= 100000
fuzz: $(STAMP) ## fuzz each server with 100,000 bad inputs (FUZZ_INPUTS=n), path escapes, HTTP attacks (~10 min)
	SOCKLAB_FUZZ_INPUTS=$(FUZZ_INPUTS) $(PY) -m pytest tests/fuzz -q -s

bench: $(STAMP) ## measure against iperf3, ping, http.server...: a table and bench/out/ (COLD=1: also a cold set-up, removing the images)
	$(PY) -m socklab.host.bench $(if $(COLD),--cold)

clean: down ## stop the lab, remove the images, the venv and the lab outputs
	-docker image ls -q --filter label=org.socklab.image | sort -u | xargs -r docker image rm -f
	rm -rf $(VENV) labs/*/out bench/out
