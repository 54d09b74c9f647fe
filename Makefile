# Every target delegates to an npm script (package.json is the one place commands are defined).
.PHONY: build test bench lint clean deps demo demo-run install install-systemd install-sysv uninstall

# Where `make install` puts things; DESTDIR stages them for a package.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR ?=
# `make demo KEEP=1` keeps the demo running, like `make demo-run`.
KEEP ?=

INSTALL_ENV = PREFIX="$(PREFIX)" SYSCONFDIR="$(SYSCONFDIR)" DESTDIR="$(DESTDIR)"

build: | node_modules
	npm run build

# gearmand, the gearman CLI and the npm dependencies when missing (scripts/install-deps.sh), then the
# suite. `npm test` builds first (pretest).
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

# Order-only prerequisite: installs dependencies only when node_modules is missing.
node_modules:
	npm ci --no-audit --no-fund
