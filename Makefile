# The two set-up commands of the README. Each creates .venv if missing and installs what it needs.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.roz-installed
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test test-fast lint install bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/roz demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile tests

# the same suite without the end-to-end subprocess tests marked slow (demo, kill-and-resume, Ray, concurrency)
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow" tests

lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check src tests

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf runs build *.egg-info
