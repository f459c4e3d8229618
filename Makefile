# zosboot: `make run` sets up and serves on 127.0.0.1:8000; `make test` runs the whole suite;
# `make install` runs it as systemd services.
# Both install their own OS packages (as root, Debian) and Python packages (.venv).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test venv lint bench edge install uninstall

# The tests that use a database but neither QEMU, a browser nor servers of their own run a
# second time on PostgreSQL, a throwaway server (provisioning/tests/postgres.py). The stack
# tests that need PostgreSQL start one themselves. A -m in PYTEST_ARGS replaces the filter.
POSTGRES_TESTS := -m "not boot and not browser and not stack"

run:
	setup/install-packages.sh run
	$(MAKE) venv
	setup/install-ipxe.sh
	setup/serve.sh

# zosboot as systemd services (zosboot, zosboot-nginx), settings in /etc/zosboot/zosboot.env;
# again after `git pull` to upgrade. uninstall removes the units and leaves the data alone.
install:
	setup/install-packages.sh run
	$(MAKE) venv
	setup/install-service.sh install

uninstall:
	setup/install-service.sh uninstall

test:
	setup/install-packages.sh test
	$(MAKE) venv
	setup/install-ipxe.sh
	setup/test-kernel.sh
	setup/test-kernel.sh arm64
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	$(PY) -m provisioning.tests.postgres -- $(VENV)/bin/pytest $(POSTGRES_TESTS) $(PYTEST_ARGS) \
		|| test $$? -eq 5  # 5: PYTEST_ARGS chose only tests that do not run on PostgreSQL

# An edge: nginx alone in front of ZOSBOOT_EDGE_ORIGIN (README, Sites).
edge:
	setup/install-packages.sh edge
	setup/edge.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench:
	setup/install-packages.sh bench
	$(MAKE) venv
	$(PY) bench/ipxe_bench.py
	$(PY) bench/storm.py
	$(PY) bench/images_bench.py
