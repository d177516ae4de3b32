"""The README's walkthroughs, run as written (`scripts/readme-tests.sh`, part of `make test`).

Each test takes the shell blocks under one README heading and runs their lines in order, as a
newcomer types them into terminals: `make dev`, `make watch`, `listen` and the receiver keep
running (in the background here, stopped with SIGINT as Ctrl-C does); every other line must exit 0,
and a curl must answer 2xx. Placeholders (`sk_test_…`, `evt_…`, `we_…`, `whsec_…`) are filled from
what earlier lines printed, the newest first. Each walkthrough gets its own tables and queues
(`PAYGATE_LOCAL_SUFFIX`), so the stacks are fresh; the local servers are already up.

What the README says a line does is asserted by `EXPECT` below, keyed by a piece of the line: a
README edit that drops a line, or a change that alters its outcome, fails here.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
README = os.path.join(ROOT, "README.md")

# Lines that keep running, and the output (or port) that says they are ready.
BACKGROUND = [
    ("make dev", "Press Ctrl-C"),
    ("make watch", 9000),
    (" listen ", "signing secret"),
    ("--example receiver", "Receiving webhooks"),
]
PLACEHOLDERS = {
    "sk_test_…": r"sk_test_[A-Za-z0-9]{20,}",
    "evt_…": r"evt_[0-9A-HJKMNP-TV-Z]{26}",
    "we_…": r"we_[0-9A-HJKMNP-TV-Z]{26}",
    "whsec_…": r"whsec_[A-Za-z0-9+/=_-]{16,}",
    "rk_test_…": r"rk_test_[A-Za-z0-9]{20,}",
    "key_…": r"key_[0-9A-HJKMNP-TV-Z]{26}",
}


def json_lines(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def body(out):
    """The JSON a curl printed (before the status line the runner appends)."""
    return json.loads(out.rsplit("\n", 1)[0])


def last_json(out):
    """The last JSON line (`make invoke` echoes its recipe first)."""
    return json.loads([line for line in out.strip().splitlines() if line.startswith("{")][-1])


def finally_failed(out):
    attempts = body(out)["data"]
    last = [a for a in attempts if a["attempt"] == 4]
    return len(attempts) == 4 and len(last) == 1 and last[0]["next_retry_at"] is None and all(a["status"] == "failed" for a in attempts)


# A piece of a line -> (a check of its output, how long to keep trying the line, and what a
# background process must print after it). The first piece that a line contains applies (a line is
# matched with its end as "\n"); lines that no piece names need only succeed.
EXPECT = {
    "Try it": {
        "--count 5": (lambda out: len(json_lines(out)) == 5 and all(e["type"] == "payment.succeeded" for e in json_lines(out)), 0, None),
        "limit=3'\n": (lambda out: len(body(out)["data"]) == 3 and body(out)["has_more"], 0, None),
        "starting_after=$last": (lambda out: len(body(out)["data"]) == 3 and all(e["type"] == "payment.succeeded" for e in body(out)["data"]), 0, None),
        "/v1/events/evt_": (lambda out: body(out)["object"] == "event", 0, None),
    },
    "Webhooks, locally": {
        "trigger payment.succeeded": (lambda out: len(json_lines(out)) == 1, 0, [("--example receiver", "signature verified"), (" listen ", "[200]")]),
        "-d url=http://127.0.0.1:4243": (lambda out: body(out)["secret"].startswith("whsec_") and body(out)["status"] == "enabled", 0, None),
        "-X DELETE": (lambda out: body(out)["deleted"] is True, 0, None),
        "/v1/webhook_endpoints\n": (lambda out: body(out)["object"] == "list", 0, None),
    },
    "Recovering final failures": {
        "-d url=http://127.0.0.1:4999": (lambda out: body(out)["secret"].startswith("whsec_"), 0, None),
        "/deliveries": (finally_failed, 60, None),
        "-- recover": (lambda out: json_lines(out)[0]["queued"] == 1, 0, [("--example receiver", "signature verified")]),
        "dlq redrive": (lambda out: json_lines(out)[0]["moved"] == 1, 30, None),
    },
    "API keys": {
        "/v1/api_keys\n": (lambda out: [k["type"] for k in body(out)["data"]] == ["secret"], 0, None),
        "permissions[events]=read": (lambda out: body(out)["secret"].startswith("rk_test_") and body(out)["permissions"]["events"] == "read", 0, None),
        "rk_test_": (lambda out: body(out)["object"] == "list", 0, None),
        "keys revoke": (lambda out: last_json(out)["type"] == "restricted", 0, None),
        "keys roll": (lambda out: last_json(out)["secret"].startswith("sk_test_"), 0, None),
        "keys list\n": (lambda out: len(last_json(out)["data"]) in (1, 2), 0, None),
    },
    "Local invokes": {
        "FN=get-event": (lambda out: last_json(out)["statusCode"] == 200 and "evt_01M86Q64X5F9SJQX46N8MH7WTH" in last_json(out)["body"], 0, None),
        "FN=list-events": (lambda out: last_json(out)["statusCode"] == 200, 0, None),
        "FN=deliver-webhooks": (lambda out: last_json(out) == {"batchItemFailures": []}, 0, None),
    },
    "Deploy locally (the template itself, on an AWS emulator)": {
        "make deploy-local": (lambda out: "/_aws/execute-api/" in out and re.search(PLACEHOLDERS["sk_test_…"], out), 0, None),
        "--deployed trigger": (lambda out: len(json_lines(out)) == 1, 0, None),
        "remote invoke": (lambda out: '"statusCode": 200' in out, 0, None),
    },
}


def section_commands(heading):
    """The lines of the shell blocks under `## heading` or `### heading`, up to the next heading
    of the same or a higher level; comment lines dropped."""
    lines = open(README, encoding="utf-8").read().splitlines()
    level = None
    commands = []
    in_block = False
    for line in lines:
        m = re.match(r"^(#{2,3}) (.*)$", line)
        if m and not in_block:
            if level is not None and len(m.group(1)) <= level:
                break
            if m.group(2).strip() == heading:
                level = len(m.group(1))
            continue
        if level is None:
            continue
        if line.startswith("```"):
            in_block = line.strip() == "```sh" if not in_block else False
            continue
        if in_block and line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    assert commands, f"no shell block under the README heading {heading!r}"
    return commands


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Walk:
    """One walkthrough: its environment, what it printed so far, what keeps running."""

    def __init__(self, heading, tmp_path):
        self.heading = heading
        self.tmp = tmp_path
        self.env = {**os.environ, "PAYGATE_LOCAL_SUFFIX": "readme" + uuid.uuid4().hex[:10]}
        # As in a new terminal: no key yet, and not inside `make test`'s make (whose MAKELEVEL
        # would make every `make` print "Entering directory").
        for var in ["PAYGATE_KEY", "MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"]:
            self.env.pop(var, None)
        self.seen = []  # everything printed, oldest first
        self.assignments = []  # `export X=…` and `x=$(…)` lines, run again before each later line
        self.background = []  # (piece of the line, Popen, output file), oldest first

    def fill(self, line):
        for placeholder, pattern in PLACEHOLDERS.items():
            if placeholder in line:
                found = [m for out in self.seen for m in re.findall(pattern, out)]
                assert found, f"{line}: nothing printed so far gives {placeholder}"
                line = line.replace(placeholder, found[-1])
        return line

    def script(self, line):
        return "set -euo pipefail\n" + "\n".join(self.assignments + [line]) + "\n"

    def run(self, line):
        # What the line runs: without its trailing comment, placeholders filled.
        command = self.fill(re.sub(r"\s+#\s.*$", "", line))
        for piece, ready in BACKGROUND:
            if piece in command:
                return self.start(piece, command, ready)
        # A line that only sets a variable (`export X=…`, `x=$(…)`), not `X=… command`.
        if re.fullmatch(r"(export )?[A-Za-z_][A-Za-z0-9_]*=(\$\(.*\)|\S*)", command):
            self.assignments.append(command)
        check, retry_for, then = next((e for piece, e in EXPECT.get(self.heading, {}).items() if piece in command + "\n"), (None, 0, None))
        shown = command + (" -sS -w '\\n%{http_code}'" if command.startswith("curl ") else "")
        deadline = time.monotonic() + retry_for
        while True:
            p = subprocess.run(["bash", "-c", self.script(shown)], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
            out = p.stdout
            ok = p.returncode == 0
            if ok and command.startswith("curl "):
                ok = out.rsplit("\n", 1)[-1].strip().startswith("2")
            if ok and check is not None:
                try:
                    ok = bool(check(out))
                except (ValueError, KeyError, IndexError, TypeError):
                    ok = False
            if ok or time.monotonic() > deadline:
                break
            time.sleep(1)
        self.seen.append(out)
        assert ok, f"README, {self.heading}: `{command}` (exit {p.returncode}) printed:\n{out[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
        for piece, text in then or []:
            self.wait_for_output(piece, text)

    def start(self, piece, line, ready):
        out_path = self.tmp / f"{self.heading[:12]}-bg{len(self.background)}.out"
        out = open(out_path, "w")
        proc = subprocess.Popen(["bash", "-c", self.script(line)], cwd=ROOT, env=self.env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.background.append((piece, proc, out_path))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            text = out_path.read_text(errors="replace")
            if (port_open(ready) if isinstance(ready, int) else ready in text):
                self.seen.append(text)
                return
            assert proc.poll() is None, f"README, {self.heading}: `{line}` exited ({proc.returncode}):\n{text[-3000:]}"
            time.sleep(0.2)
        pytest.fail(f"README, {self.heading}: `{line}` not ready in 300 s:\n{out_path.read_text(errors='replace')[-3000:]}")

    def output_of(self, piece):
        """What the newest background process started by a line with `piece` printed."""
        return next(path for p, _, path in reversed(self.background) if p == piece).read_text(errors="replace")

    def wait_for_output(self, piece, text, bound=60):
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if text in self.output_of(piece):
                return
            time.sleep(0.2)
        pytest.fail(f"README, {self.heading}: `{piece.strip()}` never printed {text!r}:\n{self.output_of(piece)[-3000:]}")

    def stop(self):
        """SIGINT to each process group, as Ctrl-C in its terminal; then SIGKILL if it lingers."""
        for _, proc, _ in reversed(self.background):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.background.clear()


@pytest.fixture
def walk(request, tmp_path):
    walks = []

    def make(heading, *first):
        w = Walk(heading, tmp_path)
        walks.append(w)
        for line in first:
            w.run(line)
        for line in section_commands(heading):
            w.run(line)
        return w

    yield make
    for w in walks:
        w.stop()


def test_try_it(walk):
    # The README starts `make dev` in the lines above the block.
    walk("Try it", "make dev")


def test_webhooks_locally(walk):
    w = walk("Webhooks, locally", "make dev", "export PAYGATE_KEY=sk_test_…")
    assert "payment pay_" in w.output_of("--example receiver") and " GHS succeeded" in w.output_of("--example receiver")
    assert '"' not in w.output_of("--example receiver").split("succeeded")[0].rsplit("payment", 1)[-1], "no JSON quotes in what the receiver prints"


def test_a_final_failure_recovered(walk):
    w = walk("Recovering final failures")
    # The redriven copy found its delivery succeeded: the receiver got the event once.
    time.sleep(3)
    assert w.output_of("--example receiver").count("signature verified") == 1, w.output_of("--example receiver")


def test_api_keys(walk):
    w = walk("API keys", "make dev")
    # After the roll, the new key lists both secret keys, the old one expiring within the hour.
    keys = last_json(w.seen[-1])["data"]
    assert sorted(k["expires_at"] is None for k in keys) == [False, True], keys


def test_local_invokes(walk):
    assert not port_open(3000), "a make dev is running; the README says to stop it first"
    walk("Local invokes")


def test_deploy_locally(walk):
    started = subprocess.run(["scripts/local.sh", "emulator"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    try:
        w = walk("Deploy locally (the template itself, on an AWS emulator)")
        # The printed URL resolves in Python (urllib), not only in curl.
        env = open(os.path.join(ROOT, ".tools", "deploy-local", "env")).read()
        url = re.search(r"PAYGATE_API_URL=(\S+)", env).group(1)
        key = re.findall(PLACEHOLDERS["sk_test_…"], w.seen[0])[-1]
        import urllib.request
        req = urllib.request.Request(url + "/v1/events?limit=1", headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200 and json.loads(r.read())["object"] == "list"
    finally:
        if started:
            subprocess.run(["scripts/local.sh", "stop", "emulator"], cwd=ROOT, check=False)
