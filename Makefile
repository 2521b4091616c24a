# Two commands for a fresh Debian 12 machine (run as root):
#   make demo   install every system and Python dependency, run a container in a VM
#   make test   the same installs, then the whole test suite
VENV    ?= .venv
PY      := $(VENV)/bin/python
APT_PKGS := qemu-system-x86 qemu-utils e2fsprogs skopeo umoci busybox-static \
            mmdebstrap linux-source-6.1 build-essential flex bison bc libelf-dev \
            libssl-dev cpio libjson-c-dev python3-venv zstd xz-utils bzip2 gzip patch \
            ca-certificates dnsmasq-base nftables iproute2
# The libvirt backend (`vmcontainer daemon --backend libvirt`): libvirtd, and what
# pip needs to build libvirt-python. Its services are not started by installing:
# tests start `virtlogd -d` and `libvirtd -d` themselves (tests/backends.py).
LIBVIRT_PKGS := libvirt-daemon-system libvirt-clients libvirt-dev pkg-config
# Only the tests need these (sshd for `-H ssh://`, docker-registry for pull and push,
# docker-compose for a compose project on bridge networks, and a docker CLI: Debian's
# docker.io when none is on PATH), installed without starting or enabling their
# system services (policy-rc.d answers 101: "action forbidden").
TEST_PKGS := openssh-server docker-registry openssl docker-compose
STAMP   := $(VENV)/.installed

.PHONY: deps test-deps install demo test lint bench clean
deps:
	@missing=$$(for p in $(APT_PKGS) $(LIBVIRT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test-deps:
	@missing=$$(for p in $(TEST_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done; \
	  command -v docker >/dev/null || echo docker.io); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing (service not started)"; \
	  policy=/usr/sbin/policy-rc.d; made=; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' >$$policy && chmod 755 $$policy && made=1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; rc=$$?; \
	  if [ -n "$$made" ]; then rm -f $$policy; fi; \
	  systemctl disable ssh.service ssh.socket docker.service docker.socket >/dev/null 2>&1 || true; \
	  exit $$rc; \
	fi

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint,libvirt]'
	touch $(STAMP)

install: deps $(STAMP)

demo: install
	tmp=$$(mktemp -d) && images/busybox/rootfs.sh $$tmp/busybox.tar && \
	  $(VENV)/bin/vmcontainer import $$tmp/busybox.tar busybox && rm -rf $$tmp
	$(VENV)/bin/vmcontainer run --rm busybox sh -c 'echo "hello from $$(hostname), a VM running Linux $$(uname -r)"'

# The whole suite on each path a container can take (issue 9: both in CI): qemu
# backend warm (template clones, the default where it applies), qemu backend cold
# (every container boots), and the libvirt backend (tests/backends.py reads
# VMCONTAINER_BACKEND; libvirt domains always boot).
# --durations: the slowest tests of each pass in the log (where the suite's time goes).
PYTEST := $(PY) -m pytest -ra --durations=15 tests
test: install test-deps
	$(PYTEST)
	VMCONTAINER_WARM_START=0 $(PYTEST)
	VMCONTAINER_BACKEND=libvirt $(PYTEST)

lint: install
	$(VENV)/bin/ruff check vmcontainer tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/start_latency.py
	$(PY) bench/backend_latency.py

clean:
	rm -rf $(VENV) guest/build
