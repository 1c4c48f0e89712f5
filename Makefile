# Pipetower: `make serve` to run it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: serve check test fuzz lint fmt install install-test clean screenshots bench bench-fanout bench-users

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Pipetower needs Python 3.12 or newer (see .python-version).")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(STAMP)

# The benchmarks' extras (baselines, profiler) beside the test extras; never in `make test`.
$(BENCH_STAMP): $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	@touch $@

install: $(STAMP)
install-test: $(TEST_STAMP)

serve: $(STAMP)
	$(BIN)/pipetower serve

check: $(STAMP)
	$(BIN)/pipetower check

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy pipetower
	$(BIN)/python manage.py makemigrations --check --dry-run

# Two test processes by default (pytest-xdist; each gets its own data directory, test
# database and Redis databases, tests/settings.py); TEST_PROCESSES=0 runs them in one.
TEST_PROCESSES ?= 2
test: $(TEST_STAMP)
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

# The main pages of a seeded demo team at 1280 px and 390 px, into docs/screenshots/.
screenshots: $(TEST_STAMP)
	PIPETOWER_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest tests/browser/test_screenshots.py -q -p no:cacheprovider

# The long Schemathesis run over the whole API (`make test` runs a few cases per operation).
FUZZ_EXAMPLES ?= 200
fuzz: $(TEST_STAMP)
	PIPETOWER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/security/test_api_fuzz.py -q -s -p no:logging $(PYTEST_ARGS)

# Benchmarks by hand, never timed tests; bench/RESULTS.md has the figures. `make bench`: the
# fan-out at N = 10, 50, 200 beside plain asyncssh, parallel-ssh and ansible (needs root, like
# the SSH tests), then the load benchmark (needs wrk). BENCH_ARGS goes to the load benchmark.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/fanout.py 10 50 200
	$(BIN)/python bench/load.py $(BENCH_ARGS)

# The fan-out alone; BENCH_ARGS are its sizes (default 10 50 200), BENCH_REPEATS its repeats (3).
bench-fanout: $(BENCH_STAMP)
	$(BIN)/python bench/fanout.py $(BENCH_ARGS)

# Many people at once while a run streams on 200 real sshd servers (needs root, like the SSH tests).
bench-users: $(TEST_STAMP)
	$(BIN)/python bench/users.py $(BENCH_ARGS)

fmt: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info
