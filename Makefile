# The two commands of the README contract:
#   make preview [STACK=dev]   offline plan of a stack (sets up .venv on first use)
#   make test                  the offline test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# checkov pins boto3 and packaging at versions the tools cannot use: its own virtualenv.
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed

.PHONY: preview test lint venv policy scan aws-scan cost timeline clean

$(STAMP): requirements.txt
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

# Test tools (LiteLLM, kubernetes-validate, a test PostgreSQL) are large: only `make test`
# and `make lint` install them, `make preview` needs the program's dependencies alone.
$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $(TEST_STAMP)

$(SCAN_STAMP): requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	touch $(SCAN_STAMP)

venv: $(TEST_STAMP) $(SCAN_STAMP)

preview: $(STAMP)
	$(BIN)/python -m tools.preview $(STACK)

test: $(TEST_STAMP) $(SCAN_STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The policy pack's rules over the offline plan of every committed stack (also in `make test`).
policy: $(TEST_STAMP)
	$(BIN)/python -m tools.policy_check

# checkov over every rendered manifest of every committed stack (also in `make test`).
scan: $(STAMP) $(SCAN_STAMP)
	$(BIN)/python -m tools.security_scan

# checkov's terraform_plan checks over the AWS resources of every committed stack, translated
# into `terraform show -json`; findings allowed only as tools/data/aws-scan-exceptions.json
# says (also in `make test`).
aws-scan: $(STAMP) $(SCAN_STAMP)
	$(BIN)/python -m tools.aws_scan

# Monthly cost of a stack's offline plan, per component (prices: tools/data/aws-prices-*.json).
cost: $(STAMP)
	$(BIN)/python -m tools.cost $(STACK)

# Predicted first-deploy and destroy critical paths of a stack's offline plan
# (durations, each with its source: tools/data/durations.json).
timeline: $(STAMP)
	$(BIN)/python -m tools.timeline $(STACK)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache .ruff_cache
