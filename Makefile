# Every target delegates to an npm script (package.json is the one place commands are defined).
.PHONY: build test bench lint clean deps demo demo-run image-test install install-systemd install-sysv uninstall

# Where `make install` puts things; DESTDIR stages them for a package.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR ?=
# `make demo KEEP=1` keeps the demo running, like `make demo-run`.
KEEP ?=

# scripts/install-deps.sh installs a Node.js >= 24 into .node/ when the machine's is older. Its folder goes
# first on PATH for every recipe, so npm, the npm scripts it runs and the daemon's `#!/usr/bin/env node`
# all use it (scripts/node-env.sh does the same for the shell scripts). A folder that does not exist yet
# is skipped by PATH lookups, and one created by the `deps` step counts for the recipes after it.
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
export PATH := $(ROOT)/.node/current/bin:$(PATH)

INSTALL_ENV = PREFIX="$(PREFIX)" SYSCONFDIR="$(SYSCONFDIR)" DESTDIR="$(DESTDIR)"

build: | node_modules
	npm run build

# Node.js >= 24 (into .node/ when the machine's is older), gearmand, the gearman CLI and the npm
# dependencies when missing (scripts/install-deps.sh), then the suite. `npm test` first names the node
# it runs under, builds, lints and checks for import cycles (pretest), then runs the suite under coverage.
test: deps
	npm test

# What test and demo need; apt-get runs only as root or through sudo, else the command is printed.
deps:
	npm run deps

# A local gearmand, the example endpoint and driveshaft on free ports; a few jobs; then all stopped.
demo:
	KEEP="$(KEEP)" npm run demo

# The same, left running until Ctrl-C, with commands to try.
demo-run:
	npm run demo:run

# The container image (contrib/container/Containerfile) built on a base made here from Debian's mirror and
# checked beside a real gearmand: health, jobs, reload, reaping, drain, compose (docs/container.md). Root.
image-test:
	npm run image-test

bench: | node_modules
	npm run bench

lint: | node_modules
	npm run lint

clean:
	npm run clean

# The daemon into $(PREFIX)/lib/driveshaft, the `driveshaft` command, the man page, example configs in
# $(SYSCONFDIR)/driveshaft (existing ones are kept).
install: build
	$(INSTALL_ENV) npm run system-install

# install, plus the systemd unit (and the driveshaft system user).
install-systemd: build
	$(INSTALL_ENV) npm run system-install -- --systemd

# install, plus the LSB init script in $(SYSCONFDIR)/init.d.
install-sysv: build
	$(INSTALL_ENV) npm run system-install -- --sysv

# Removes what install put in place; configs in $(SYSCONFDIR) are kept.
uninstall:
	$(INSTALL_ENV) npm run system-uninstall

# Order-only prerequisite: when node_modules is missing, a supported Node.js (into .node/ if the machine's
# is too old) and `npm ci` under it; not the system packages, which only test and demo need.
node_modules:
	bash scripts/install-deps.sh --no-system
