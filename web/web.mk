# The web UI (web/): `make web` builds web/dist (embedded into flowlake by
# go:embed, so run it before `make build` to ship the UI), `make web-test` runs the
# unit tests (Vitest) and the end-to-end tests (Chromium + playwright-core against
# a real `flowlake serve`). Included by the top-level Makefile.

WEB_DIR := web
NPM ?= npm

$(WEB_DIR)/node_modules/.flowlake-stamp: $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	@command -v $(NPM) >/dev/null || { echo "make web: npm not found (install Node.js 20+)"; exit 1; }
	cd $(WEB_DIR) && $(NPM) ci --no-audit --no-fund
	@touch $@

.PHONY: web
web: $(WEB_DIR)/node_modules/.flowlake-stamp ## build the web UI into web/dist (then `make build` embeds it)
	cd $(WEB_DIR) && $(NPM) run build

.PHONY: web-unit
web-unit: $(WEB_DIR)/node_modules/.flowlake-stamp ## web UI unit tests (Vitest)
	cd $(WEB_DIR) && $(NPM) test

.PHONY: web-e2e
web-e2e: web ## web UI end-to-end tests in Chromium against `flowlake serve` (skip without chromium)
	cd $(WEB_DIR) && $(NPM) run e2e

.PHONY: web-test
web-test: web-unit web-e2e ## web UI tests: unit + end-to-end
