# `make test` sets up everything on a fresh machine (Debian packages, venv) and runs every check.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := unbound iproute2 iputils-ping util-linux procps busybox wait-for-it \
	podman runc debootstrap python3-torch openmpi-bin python3-mpi4py openssh-server shellcheck
IMAGE ?= peer-agent:0.1.0
STAMP := $(VENV)/.installed

.PHONY: check test deep demo demo-deps bench scale soak reliability fuzz image zipapp dist lint-code \
	lint-workflows deps venv clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint]'
	touch $(STAMP)

venv: $(STAMP)

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# kubectl (for `kubectl kustomize`) comes with the machine image; Debian's own
	@# kubernetes-client is 1.20, whose kustomize cannot read today's kustomizations.
	@command -v kubectl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl \
	  || { echo "kubectl >= 1.27 is needed (kubectl kustomize); install it" >&2; exit 1; }

# Lint, types, the layer contracts (pyproject.toml's [tool.importlinter]) and the workflows.
lint-code: $(STAMP) lint-workflows
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict agent tests bench tools
	$(VENV)/bin/lint-imports --no-logo

# The GitHub Actions workflows (.github/workflows/release.yml): actionlint's checks and zizmor's
# audits (jactionlint), shellcheck on their scripts; offline, every finding an error.
lint-workflows: $(STAMP)
	$(VENV)/bin/jactionlint --no-online --strict-exit --profile=pedantic --shellcheck=shellcheck \
	  --pyflakes=

# The check for every edit, well under a minute, without root: lint-code, then the pure and
# simulator tiers (tests/conftest.py) under the quick `dev` Hypothesis profile, but for what is
# marked slow (the exhaustive explorer: minutes at the least budget where it means something).
# The pure and sim tiers run on every core (pytest-xdist: they open no port and share no file).
XDIST := -n auto --dist worksteal

check: lint-code
	$(VENV)/bin/pytest -q $(XDIST) -m "(pure or sim) and not slow" $(PYTEST_ARGS)

# Every tier; CI sets CI=1 for its fixed Hypothesis profile. The slowest tests are listed. Real
# processes, ports and namespaces (integration, faults, e2e) run one test at a time.
test: deps $(STAMP) lint-code
	$(VENV)/bin/pytest -q $(XDIST) --durations=15 -m "pure or sim" $(PYTEST_ARGS)
	$(VENV)/bin/pytest -q --durations=25 -m "not (pure or sim)" $(PYTEST_ARGS)

# Ten times CI's Hypothesis budgets and explorer states, on fresh examples, over the tiers that
# have them (pure, sim, faults: loopback, no root); timeouts grow to match. Half an hour or more.
deep: $(STAMP)
	$(VENV)/bin/pytest -q -m "pure or sim or faults" --hypothesis-profile=deep --durations=25 \
	  $(PYTEST_ARGS)

# SEED=1: the seed's own loop stranded by its early-exit race, then the same Job with peer-agent;
# TOPOLOGY=jobset|lws|trainer|mpi|volcano: another framework's pods; WORKLOAD=torchrun|mpi: a
# real workload behind peer-agent instead of the seed. Installs only what the demo runs (pods
# are network namespaces, cluster DNS is unbound, the seed's loop pings; a WORKLOAD adds its
# own), in a venv of its own without the test tools: pyyaml (the `lint` extra) reads the YAML.
DEMO_APT_PACKAGES := unbound iproute2 iputils-ping util-linux \
	$(if $(filter torchrun,$(WORKLOAD)),python3-torch) \
	$(if $(filter mpi,$(WORKLOAD)),openmpi-bin python3-mpi4py openssh-server)
DEMO_VENV ?= build/demo-venv
DEMO_STAMP := $(DEMO_VENV)/.installed

$(DEMO_STAMP): pyproject.toml
	python3 -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install -q -e '.[lint]'
	touch $(DEMO_STAMP)

demo-deps:
	@$(MAKE) --no-print-directory deps APT_PACKAGES='$(strip $(DEMO_APT_PACKAGES))'

demo: demo-deps $(DEMO_STAMP)
	$(DEMO_VENV)/bin/python -m tests.harness.demo $(if $(SEED),--seed,) \
	  $(if $(TOPOLOGY),--topology $(TOPOLOGY),) $(if $(WORKLOAD),--workload $(WORKLOAD),)

# Reuses the cluster in a box (root, like `make test`); BENCH_ARGS=--quick for a smoke run.
bench: deps $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench $(BENCH_ARGS)

# The agent's modes at scale in the cluster in a box, as root like `make test`: SCALE_PODS pods
# (default 256) of each of SCALE_MODES (sidecar, run --exit-barrier, wait), every one on a
# fresh cluster, all pods at once; minutes a mode on two cores, so not part of `make test`.
# Exits 1 unless every Job completes with every agent released and no session cut.
# First the in-memory cluster's rows (tests/sim/scale.py: shipped cores, CPU charged per pod,
# sparse at 1,000 and 10,000, with faults at 1,000 and 10,000, all-to-all at 256; about 15
# minutes; SCALE_SIM_ARGS= to choose, e.g. "--sizes 100000"; SCALE_SIM=0 to skip).
# The in-memory rows run compiled by mypyc (MYPYC_DIR: a copy of agent/ and tests/sim/ with the
# unchanged sources of MYPYC_MODULES compiled beside them; tests/sim/compiled.py): the cores and
# the wire (agent/core, agent/protocol) and the simulator's loop (its clock, nodes, tasks, DNS
# and record); agent/values.py stays interpreted (typing's dataclass_transform cannot mark a
# compiled function). If the build fails they run interpreted, and a line says so.
# Fault-free sparse rows of N >= 10,000 run in two OS processes (tests/sim/procs.py: the pods
# split by tree group, conservative windows of the network's least delay; --procs, --split-at).
SCALE_PODS ?= 256
SCALE_MODES ?= sidecar,exit,wait
SCALE_SIM ?= 1
MYPYC_DIR ?= build/mypyc
MYPYC_MODULES := agent/core/ agent/protocol/ $(addprefix tests/sim/,clock.py node.py tasks.py part.py \
	cluster.py dns.py truth.py draws.py)
MYPYC_SOURCES := $(shell find agent tests/sim -name '*.py')

$(MYPYC_DIR)/.built: $(MYPYC_SOURCES) $(STAMP)
	rm -rf $(MYPYC_DIR) && mkdir -p $(MYPYC_DIR)/tests
	cp -r agent $(MYPYC_DIR)/ && cp -r tests/__init__.py tests/sim $(MYPYC_DIR)/tests/
	find $(MYPYC_DIR) -name __pycache__ -prune -exec rm -rf {} +
	cd $(MYPYC_DIR) && { $(abspath $(VENV))/bin/mypyc $(MYPYC_MODULES) >mypyc.log 2>&1 \
	  && touch .built || echo "mypyc did not build ($(MYPYC_DIR)/mypyc.log): interpreted rows"; }

scale: deps $(STAMP) $(if $(filter 1,$(SCALE_SIM)),$(MYPYC_DIR)/.built)
	$(if $(filter 1,$(SCALE_SIM)),$(PY) -m tests.sim.compiled $(MYPYC_DIR) tests.sim.scale \
	  $(SCALE_SIM_ARGS),)
	$(PY) -m tests.harness.scale $(SCALE_PODS) --modes $(SCALE_MODES)

# Back-to-back barriers (default 200; SOAK_BARRIERS=, SOAK_SEED=) in the cluster in a box,
# as root like `make test`: summary table on stdout and in build/soak.json.
soak: deps $(STAMP)
	$(PY) -m tests.soak $(if $(SOAK_BARRIERS),--barriers $(SOAK_BARRIERS),) \
	  $(if $(SOAK_SEED),--seed $(SOAK_SEED),) $(SOAK_ARGS)

# The fault, hardening, fuzz and security tests, then docs/reliability.md from their results.
reliability: deps $(STAMP)
	$(VENV)/bin/pytest -q tests/faults
	$(PY) tools/reliability_table.py

# The coverage-guided fuzz target (tests/fuzz/target.py: wire, contacts, replies, health) under
# atheris for FUZZ_SECONDS (default 600). New inputs go to build/fuzz/corpus, crashes to
# build/fuzz/crash-*: keep each in tests/fuzz/crashes/, where `make test` replays it.
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	$(PY) -m pip install -q -e '.[fuzz]'
	mkdir -p build/fuzz/corpus
	$(PY) -m tests.fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -dict=tests/fuzz/wire.dict -artifact_prefix=build/fuzz/ build/fuzz/corpus tests/fuzz/corpus

# The image on the default base (BASE_IMAGE=python:3.12-slim, from your registry); pass
# BASE_IMAGE=... for another one with python3 and pip.
image:
	podman build -t $(IMAGE) $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE),) .

zipapp: $(STAMP)
	$(PY) tools/build_zipapp.py -o dist/peer-agent.pyz

# The sdist and the wheel into dist/, as the release workflow builds them (an isolated build:
# setuptools from the package index), and PyPI's checks of them. `make test` builds and checks
# them too (tests/integration/test_packaging.py).
dist: $(STAMP)
	rm -f dist/*.tar.gz dist/*.whl
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*.tar.gz dist/*.whl

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
