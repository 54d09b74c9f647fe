# Every target delegates to an npm script (package.json is the one place commands are defined).
.PHONY: build test bench lint clean

build: | node_modules
	npm run build

# `npm test` builds first (pretest).
test: | node_modules
	npm test

bench: | node_modules
	npm run bench

lint: | node_modules
	npm run lint

clean:
	npm run clean

# Order-only prerequisite: installs dependencies only when node_modules is missing.
node_modules:
	npm ci --no-audit --no-fund

# demo: added later (runs the daemon against a local gearmand and endpoint).
