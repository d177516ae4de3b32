"""The local stack the tests run against: `paygate dev` (started by scripts/sdk-tests.sh) and the
`paygate` binary for accounts and events."""

import json
import os
import subprocess
import time

import pytest

BASE = os.environ.get("PAYGATE_API_BASE")
BIN = os.environ.get("PAYGATE_BIN")


def pytest_configure(config):
    if not BASE or not BIN:
        raise pytest.UsageError("Run these tests through `make test` (scripts/sdk-tests.sh sets PAYGATE_API_BASE and PAYGATE_BIN).")


@pytest.fixture(scope="session")
def account():
    """A fresh account: {account_id, test_key, live_key}."""
    return json.loads(subprocess.run([BIN, "accounts", "create"], check=True, capture_output=True).stdout)


@pytest.fixture(scope="session")
def trigger(account):
    """`paygate trigger`: `count` realistic events of a type; returns them."""

    def run(event_type, count=1):
        out = subprocess.run([BIN, "trigger", event_type, "--api-key", account["test_key"], "--count", str(count)], check=True, capture_output=True).stdout
        return [json.loads(line) for line in out.decode().splitlines()]

    return run


def eventually(check, what, bound=60.0):
    """Polls `check` (bounded) until it returns something truthy."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
