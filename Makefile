# kok-relay: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv run test lint bench demo coverage clean refresh-kern

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

PORT   ?= 8787

## Start a development relay on 127.0.0.1:$(PORT) (bootstraps ./var/ if absent); make run PORT=9000
run: $(STAMP)
	$(BIN)/python -m relay.devrun --dir var --port $(PORT)

## Lint and run the whole test suite in two worker processes (pytest-xdist; a test file goes to
## one worker whole and its tests run in file order, as the browser tests need). Serially:
## make test PYTEST_WORKERS=0, or .venv/bin/python -m pytest -q
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy protocol relay client

## Slow benchmarks, not part of `make test`.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,speed]'
	$(BIN)/python -m tests.benchmarks

## A walk through the whole flow against a throw-away relay.
demo: $(STAMP)
	$(BIN)/kok demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache .coverage-data

## Refresh the vendored KERN UX stylesheet and fonts of the staff app from npm (pinned version).
KERN_VERSION ?= 2.7.2
KERN_DIR := client/app/static/kern
KERN_FONTS := Regular Italic Medium SemiBold
refresh-kern:
	rm -rf .kern-pack && mkdir .kern-pack
	cd .kern-pack && npm pack --silent @kern-ux/native@$(KERN_VERSION) >/dev/null && tar xzf *.tgz
	mkdir -p $(KERN_DIR)/fonts
	cp .kern-pack/package/dist/kern.min.css $(KERN_DIR)/kern.min.css
	cp .kern-pack/package/LICENSE.md $(KERN_DIR)/LICENSE.md
	for f in $(KERN_FONTS); do cp .kern-pack/package/dist/fonts/fira-sans/FiraSans-$$f.woff2 $(KERN_DIR)/fonts/; done
	echo "@kern-ux/native $(KERN_VERSION) (EUPL-1.2), from npm by 'make refresh-kern'" > $(KERN_DIR)/VERSION
	rm -rf .kern-pack

## Line coverage of the whole suite, following the relay and `kok` child processes
## ([tool.coverage] in pyproject.toml); prints every module below 100% and one figure per
## package. The figures are printed even when a test fails; the exit status is pytest's.
## Run it in the foreground: a shell's background job (`make coverage &`) ignores SIGINT,
## and so do its children, which fails the tests that stop kok with Ctrl-C.
coverage: $(STAMP)
	rm -rf .coverage-data && mkdir .coverage-data
	$(BIN)/python -m coverage run -m pytest -q -p no:cacheprovider; status=$$?; \
	$(BIN)/python -m coverage combine -q && \
	$(BIN)/python -m coverage report --skip-covered --sort=cover && \
	for pkg in protocol relay client; do \
	  echo "$$pkg: $$($(BIN)/python -m coverage report --include="$$pkg/*" --format=total)%"; \
	done; exit $$status
