"""Acceptance tests against the stack `make deploy-local` deployed on the AWS emulator (IAM
enforced): the real functions behind the real HTTP API, stream and queue mappings.

Run by scripts/deployed-tests.sh (from `make test`) with the stack's names in the environment
(.tools/deploy-local/env) and the build venv's Python (boto3, pytest).
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest

API = os.environ["PAYGATE_API_URL"]
# `http://127.0.0.1:{port}/_aws/execute-api/{api id}/{stage}`, the emulator's path-style address,
# which every client resolves (`make deploy-local` prints it).
_API = urllib.parse.urlsplit(API)
ORIGIN = API
STACK = os.environ.get("PAYGATE_LOCAL_STACK", "paygate-local")
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BIN = os.path.join(ROOT, "target", "debug", "paygate")


def physical(logical):
    res = boto3.client("cloudformation").describe_stack_resources(StackName=STACK)["StackResources"]
    return next(r["PhysicalResourceId"] for r in res if r["LogicalResourceId"] == logical)


def call(method, path, key=None, body=None):
    headers = {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(ORIGIN + path, data=None if body is None else json.dumps(body).encode(), method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else {}


def eventually(check, what, bound=90.0):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def new_account():
    """A new account through the CLI, with its test key."""
    return json.loads(subprocess.run([BIN, "accounts", "create"], check=True, capture_output=True).stdout)


@pytest.fixture(scope="module")
def account():
    return new_account()


def subscribe(receiver, key, events):
    """An endpoint at `receiver` for `events`, created through the API; the receiver keeps its secret."""
    status, ep = call("POST", "/v1/webhook_endpoints", key, {"url": receiver.url, "events": events})
    assert status == 200, ep
    receiver.secret, receiver.endpoint = ep["secret"], ep["id"]
    return ep


def ingest(account, event_type, obj):
    """Publishes through the deployed IngestEventFunction (the Lambda API)."""
    payload = {"account_id": account["account_id"], "mode": "test", "type": event_type, "data": {"object": obj}}
    out = boto3.client("lambda").invoke(FunctionName=physical("IngestEventFunction"), Payload=json.dumps(payload).encode())
    assert "FunctionError" not in out, out["Payload"].read()
    return json.loads(out["Payload"].read())


class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies both signature schemes."""

    def __init__(self, status=200, port=0, delay=0.0):
        self.got, self.status, self.secret, self.started = [], status, None, []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.started.append(body)
                time.sleep(delay)
                # Recorded before the answer goes out: a sender that saw the answer finds it here.
                record = (body, outer.verify(body, self.headers))
                outer.got.append(record)
                try:
                    self.send_response(outer.status)
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    outer.got.remove(record)  # the sender withdrew the request: not answered

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def verify(self, body, h):
        parts = h["x-paygate-signature"].split(",")
        t = next(p[2:] for p in parts if p.startswith("t="))
        mac = hmac.new(self.secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        stripe = any(hmac.compare_digest(mac, p[3:]) for p in parts if p.startswith("v1="))
        key = base64.b64decode(self.secret[len("whsec_"):])
        std = base64.b64encode(hmac.new(key, f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body, hashlib.sha256).digest()).decode()
        return stripe and hmac.compare_digest(h["webhook-signature"], f"v1,{std}")


def test_authentication_shapes(account):
    status, body = call("GET", "/v1/events", "sk_test_doesNotExist0000000000000")
    assert status == 401 and body["error"]["type"] == "authentication_error", body
    status, body = call("GET", "/v1/events")
    assert status == 401 and body["error"]["code"] == "api_key_missing", "no key: the function answers our 401"


def test_every_unmatched_path_gets_the_stripe_shaped_error(account):
    """The $default route: paths no route matches (an unknown one, an id with encoded slashes, as
    stripe-python sends a malformed id) answer in the Stripe error shape, not API Gateway's."""
    key = account["test_key"]
    for path in ["/v1/nope", "/v1/events/evt_..%2F..%2Fx", "/v1/events/evt_1/deliveries/x"]:
        status, body = call("GET", path, key)
        assert status == 404 and body["error"]["type"] == "invalid_request_error", (path, status, body)


def test_the_dashboard_is_served_by_its_function_under_a_strict_policy():
    req = urllib.request.Request(ORIGIN + "/dashboard", headers={"Accept-Encoding": "identity"})
    with urllib.request.urlopen(req, timeout=30) as r:
        html = r.read().decode()
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        assert "connect-src 'self'" in r.headers["Content-Security-Policy"] and "script-src 'self'" in r.headers["Content-Security-Policy"]
    script = html.split('<script type="module" src="', 1)[1].split('"', 1)[0]
    assert script.startswith("dashboard/app-") and script.endswith(".js"), html
    # The bundle, through the greedy route, relative to the stage as the page asks for it.
    req = urllib.request.Request(ORIGIN + "/" + script, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
        assert r.status == 200 and r.headers["Content-Encoding"] == "gzip" and body[:2] == b"\x1f\x8b"
    req = urllib.request.Request(ORIGIN + "/dashboard/event-types.json")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert sum(len(f["types"]) for f in json.loads(r.read())["families"]) == 27


def test_retrieve_list_and_errors(account):
    key = account["test_key"]
    made = [ingest(account, t, {"id": f"obj_{i}", "object": "payment"}) for i, t in enumerate(["payment.created", "payment.succeeded", "refund.created"])]
    status, got = call("GET", f"/v1/events/{made[1]['id']}", key)
    assert status == 200 and got["id"] == made[1]["id"] and got["type"] == "payment.succeeded"
    status, page = call("GET", "/v1/events?limit=2", key)
    assert status == 200 and [e["id"] for e in page["data"]] == [made[2]["id"], made[1]["id"]] and page["has_more"]
    _, nxt = call("GET", f"/v1/events?limit=2&starting_after={made[1]['id']}", key)
    assert [e["id"] for e in nxt["data"]] == [made[0]["id"]]
    _, by_type = call("GET", "/v1/events?type=refund.created", key)
    assert [e["id"] for e in by_type["data"]] == [made[2]["id"]]
    _, family = call("GET", "/v1/events?type=payment.*", key)
    assert [e["id"] for e in family["data"]] == [made[1]["id"], made[0]["id"]]
    status, err = call("GET", "/v1/events/evt_01M86Q64X5F9SJQX46N8MH7WTH", key)
    assert status == 404 and err["error"]["code"] == "resource_missing"
    status, err = call("GET", "/v1/events?limit=0", key)
    assert status == 400 and err["error"]["param"] == "limit"


def test_webhooks_end_to_end_retries_and_the_dlq(account):
    key = account["test_key"]
    good, bad = Receiver(), Receiver(status=500)
    try:
        for r, events in [(good, ["payment.*"]), (bad, ["refund.*"])]:
            status, ep = call("POST", "/v1/webhook_endpoints", key, {"url": r.url, "events": events})
            assert status == 200, ep
            r.secret, r.endpoint = ep["secret"], ep["id"]
        paid = ingest(account, "payment.succeeded", {"id": "pay_1", "object": "payment"})
        refund = ingest(account, "refund.created", {"id": "re_1", "object": "refund"})
        eventually(lambda: good.got, "the delivery")
        body, verified = good.got[0]
        assert verified, "both signature schemes verify"
        assert json.loads(body)["id"] == paid["id"]
        _, attempts = eventually(lambda: (lambda s, b: (s, b) if any(a["status"] == "succeeded" for a in b.get("data", [])) else None)(*call("GET", f"/v1/events/{paid['id']}/deliveries", key)), "the attempt record")
        assert attempts["data"][0]["endpoint"] == good.endpoint
        # RetrySchedule=1,2,4: four attempts, then the final failure and the dead-letter queue.
        eventually(lambda: len(bad.got) >= 4, "four attempts", bound=120)
        _, refund_attempts = eventually(lambda: (lambda s, b: (s, b) if any(a["next_retry_at"] is None for a in b.get("data", [])) else None)(*call("GET", f"/v1/events/{refund['id']}/deliveries", key)), "the final failure", bound=120)
        assert [a["status"] for a in refund_attempts["data"]] == ["failed"] * 4
        sqs = boto3.client("sqs")
        dlq = os.environ["PAYGATE_DELIVERY_DLQ_URL"]
        msgs = eventually(lambda: sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"), "the dead letter")
        assert any(refund["id"] in m["Body"] for m in msgs)
        _, event = call("GET", f"/v1/events/{refund['id']}", key)
        assert event["pending_webhooks"] == 0
    finally:
        good.server.shutdown()
        bad.server.shutdown()


def test_an_endpoint_answering_in_a_second_is_delivered_from_the_slow_lane():
    """The two mappings, deployed: the delivery queue's invocation withdraws the attempt at 0.5 s
    and moves the delivery to SlowDeliveryQueue (under the function's own policy); that queue's
    mapping invokes the function again, which knows its lane by the batch's eventSourceARN and
    waits the second out."""
    fresh = new_account()
    key = fresh["test_key"]
    slow = Receiver(delay=1.0)
    try:
        ep = subscribe(slow, key, ["payment.*"])
        paid = ingest(fresh, "payment.succeeded", {"id": "pay_slow", "object": "payment"})
        _, attempts = eventually(
            lambda: (lambda s, b: (s, b) if any(a["status"] == "succeeded" for a in b.get("data", [])) else None)(*call("GET", f"/v1/events/{paid['id']}/deliveries", key)),
            "the delivery from the slow lane",
        )
        assert len(attempts["data"]) == 1, attempts
        assert attempts["data"][0]["latency_ms"] >= 1000, attempts
        assert len(slow.started) == 2, "the withdrawn request, then the slow lane's attempt"
        assert all(json.loads(b)["id"] == paid["id"] for b in slow.started)
        body, verified = slow.got[-1]
        assert verified and json.loads(body)["id"] == paid["id"]
        _, endpoint = call("GET", f"/v1/webhook_endpoints/{ep['id']}", key)
        assert endpoint["health"]["slow_lane"] is True and endpoint["health"]["slow"] is False, endpoint["health"]
    finally:
        slow.server.shutdown()


def test_every_endpoint_route_works_under_the_functions_own_policy(account):
    """Each route of the endpoints function once, on the stack with IAM enforced: a permission the
    explicit action lists left out would fail its route here."""
    key = account["test_key"]
    r = Receiver()
    try:
        status, ep = call("POST", "/v1/webhook_endpoints", key, {"url": r.url, "events": ["payout.*"]})
        assert status == 200, ep
        r.secret, path = ep["secret"], f"/v1/webhook_endpoints/{ep['id']}"
        event = ingest(account, "payout.created", {"id": "po_iam", "object": "payout"})
        eventually(lambda: r.got, "the delivery")
        checks = [
            ("GET", "/v1/webhook_endpoints", None),
            ("GET", path, None),
            ("POST", path, {"description": "iam", "status": "disabled"}),
            ("POST", path, {"status": "enabled"}),  # enabling clears the endpoint's health (DeleteItem)
            ("POST", f"{path}/rotate_secret", {}),
            ("GET", f"{path}/stats", None),
            ("POST", f"{path}/resend", {"event": event["id"]}),
            ("POST", f"{path}/recover", {"since": 0}),
            ("GET", f"/v1/events/{event['id']}/deliveries?limit=1", None),
            ("DELETE", path, None),
        ]
        for method, route, body in checks:
            status, answer = call(method, route, key, body)
            assert status == 200, (method, route, status, answer)
    finally:
        r.server.shutdown()


def test_api_keys_under_the_functions_own_policies():
    """Every /v1/api_keys route through ApiKeysFunction with IAM enforced (the ByAccount Query, the
    roll's transaction), a restricted key held to its permissions by the other functions, and the
    day of last use written by them (their UpdateItem on ApiKeys)."""
    made = json.loads(subprocess.run([BIN, "--deployed", "accounts", "create"], check=True, capture_output=True).stdout)
    sk = made["test_key"]
    status, keys = call("GET", "/v1/api_keys", sk)
    assert status == 200 and [k["type"] for k in keys["data"]] == ["secret"], keys
    assert keys["data"][0]["last_used"] is not None, "written by the function that read the key"
    status, rk = call("POST", "/v1/api_keys", sk, {"name": "ops", "permissions": {"events": "read"}})
    assert status == 200 and rk["secret"].startswith("rk_test_"), rk
    assert call("GET", "/v1/events?limit=1", rk["secret"])[0] == 200
    status, refused = call("GET", "/v1/webhook_endpoints", rk["secret"])
    assert status == 403 and refused["error"]["type"] == "permission_error", refused
    assert call("GET", "/v1/api_keys", rk["secret"])[0] == 403
    status, rolled = call("POST", f"/v1/api_keys/{rk['id']}/roll", sk, {"expires_in": 60})
    assert status == 200 and rolled["secret"].startswith("rk_test_"), rolled
    status, revoked = call("POST", f"/v1/api_keys/{rk['id']}/revoke", sk, {})
    assert status == 200, revoked
    # Another function may still hold the old key for its cache bound (60 s): wait for it.
    eventually(lambda: call("GET", "/v1/events?limit=1", rk["secret"])[0] == 401, "the revoked key refused", bound=90)
    assert call("GET", "/v1/events?limit=1", rolled["secret"])[0] == 200
    # The CLI against the stack: the secret key rolled now, the new one lists the keys.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PAYGATE_"))}
    out = subprocess.run([BIN, "--deployed", "keys", "roll", keys["data"][0]["id"], "--api-key", sk], check=True, capture_output=True, env=clean).stdout
    new_sk = json.loads(out)["secret"]
    listed = json.loads(subprocess.run([BIN, "--deployed", "keys", "list", "--api-key", new_sk], check=True, capture_output=True, env=clean).stdout)
    assert {k["id"] for k in listed["data"]} == {json.loads(out)["id"], rolled["id"]}, listed


def _input(account, event_type, obj, key):
    return {"account_id": account["account_id"], "mode": "test", "type": event_type, "data": {"object": obj}, "idempotency_key": key}


def test_a_producer_key_publishes_once_through_the_deployed_function(account):
    key = f"order-{time.time_ns()}"
    invoke = lambda: json.loads(boto3.client("lambda").invoke(FunctionName=physical("IngestEventFunction"), Payload=json.dumps(_input(account, "payment.succeeded", {"id": "pay_k", "object": "payment"}, key)).encode())["Payload"].read())
    first, again = invoke(), invoke()
    assert first["id"].startswith("evt_") and again == first, (first, again)


def test_eventbridge_and_the_ingest_queue_publish_and_deliver(account):
    """PutEvents on the ingest bus and SendMessage on the ingest queue each publish an event that the
    API lists and a receiver gets; sending either again publishes nothing new."""
    key = account["test_key"]
    r = Receiver()
    try:
        status, ep = call("POST", "/v1/webhook_endpoints", key, {"url": r.url, "events": ["customer.*"]})
        assert status == 200, ep
        r.secret = ep["secret"]
        stamp = time.time_ns()
        via_bus = _input(account, "customer.created", {"id": f"cus_bus_{stamp}", "object": "customer"}, f"bus-{stamp}")
        via_queue = _input(account, "customer.updated", {"id": f"cus_queue_{stamp}", "object": "customer"}, f"queue-{stamp}")
        bus, queue = physical("PayGateIngestBus"), physical("PayGateIngestQueue")
        for _ in range(2):
            out = boto3.client("events").put_events(Entries=[{"Source": "payments", "DetailType": "customer.created", "Detail": json.dumps(via_bus), "EventBusName": bus}])
            assert out["FailedEntryCount"] == 0, out
            boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(via_queue))
        listed = lambda: (lambda s, b: b["data"] if len(b.get("data", [])) >= 2 else None)(*call("GET", "/v1/events?type=customer.*", key))
        events = eventually(listed, "both events listed", bound=120)
        assert sorted(e["data"]["object"]["id"] for e in events) == sorted([via_bus["data"]["object"]["id"], via_queue["data"]["object"]["id"]])
        eventually(lambda: len(r.got) >= 2, "both delivered", bound=120)
        assert all(verified for _, verified in r.got)
        # The repeats published nothing new.
        time.sleep(3)
        _, again = call("GET", "/v1/events?type=customer.*", key)
        assert len(again["data"]) == 2, again
    finally:
        r.server.shutdown()


def test_a_poisoned_ingest_message_goes_to_the_dead_letter_queue():
    """A message the ingest function can never publish (not JSON; then one without its key) is
    retried by the queue, then moved to IngestDeadLetterQueue (make deploy-local: 10 s, 2 receives)."""
    sqs = boto3.client("sqs")
    dlq = physical("IngestDeadLetterQueue")
    stamp = str(time.time_ns())
    sqs.send_message(QueueUrl=physical("PayGateIngestQueue"), MessageBody="{poison " + stamp)
    found = eventually(lambda: [m for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []) if stamp in m["Body"]],
                       "the poisoned message in the dead-letter queue", bound=120)
    assert found


def test_the_publisher_policy_publishes_and_reads_nothing():
    """A role with PayGatePublisherPolicy alone may PutEvents on the bus and SendMessage on the
    ingest queue, and is refused the Events table."""
    iam = boto3.client("iam")
    name = f"paygate-producer-{time.time_ns()}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    policy = physical("PayGatePublisherPolicy")
    iam.attach_role_policy(RoleName=name, PolicyArn=policy)
    c = boto3.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="producer")["Credentials"]
    creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"], "aws_session_token": c["SessionToken"]}
    # A detail the function refuses (no account): allowed to publish is all this checks.
    out = boto3.client("events", **creds).put_events(Entries=[{"Source": "payments", "DetailType": "customer.created", "Detail": "{}", "EventBusName": physical("PayGateIngestBus")}])
    assert out["FailedEntryCount"] == 0, out
    ddb = boto3.client("dynamodb", **creds)
    with pytest.raises(ddb.exceptions.ClientError) as e:
        ddb.get_item(TableName=os.environ["PAYGATE_EVENTS_TABLE"], Key={"pk": {"S": "acct_x#test"}, "id": {"S": "evt_x"}})
    assert "not authorized" in str(e.value)


def _sam_deploy(template, stack, *overrides):
    sam = os.path.join(ROOT, ".tools", "build-venv", "bin", "sam")
    subprocess.run([sam, "deploy", "--template-file", template, "--stack-name", stack, "--s3-bucket", f"{STACK}-artifacts",
                    "--capabilities", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND", "--no-confirm-changeset",
                    "--no-fail-on-empty-changeset", "--parameter-overrides", "AllowPrivateWebhookUrls=true", "DueShards=8", *overrides],
                   check=True, capture_output=True)


def test_private_webhook_urls_are_refused_outside_the_emulator_account():
    """template.yaml's rule: AllowPrivateWebhookUrls=true is refused for any account but the
    emulator's 000000000000 (here 123456789012, which the emulator takes from a 12-digit key)."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import deploy_local  # the template loader that reads CloudFormation's short tags
    template = deploy_local.load(os.path.join(ROOT, "template.yaml"))
    # The template's own parameters and rules, around one resource that needs no code.
    body = json.dumps({"Parameters": template["Parameters"], "Rules": template["Rules"], "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
    other = boto3.client("cloudformation", aws_access_key_id="123456789012", aws_secret_access_key="x")
    allow = lambda value: [{"ParameterKey": "AllowPrivateWebhookUrls", "ParameterValue": value}]
    with pytest.raises(other.exceptions.ClientError) as e:
        other.create_stack(StackName="paygate-rule-check", TemplateBody=body, Parameters=allow("true"))
    assert "PrivateWebhookUrlsOnlyOnTheEmulator" in str(e.value), e.value
    # The same stack with the default is created; so is true in the emulator's own account.
    for client, name, value in [(other, "paygate-rule-check", "false"), (boto3.client("cloudformation"), "paygate-rule-check-local", "true")]:
        client.create_stack(StackName=name, TemplateBody=body, Parameters=allow(value))
        client.delete_stack(StackName=name)


def test_a_template_without_a_permission_fails_on_that_path(tmp_path):
    """IAM is enforced: the same template with GetEventFunction's policies removed deploys, and
    GET /v1/events/{id} then fails with the emulator's not-authorized error (a Stripe-style 500)."""
    py = os.path.join(ROOT, ".tools", "build-venv", "bin", "python")
    bins = os.path.join(ROOT, ".tools", "deploy-local", "bin")
    subprocess.run([py, os.path.join(ROOT, "scripts", "deploy_local.py"), "prepare", os.path.join(ROOT, "template.yaml"), bins, str(tmp_path),
                    "--without-policies", "GetEventFunction"], check=True, capture_output=True)
    stack = f"{STACK}-iam-check"
    cf = boto3.client("cloudformation")
    try:
        _sam_deploy(str(tmp_path / "template.yaml"), stack)
        res = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cf.describe_stack_resources(StackName=stack)["StackResources"]}
        env = {**os.environ, "PAYGATE_API_KEYS_TABLE": res["ApiKeysTable"], "PAYGATE_EVENTS_TABLE": res["EventsTable"]}
        key = json.loads(subprocess.run([BIN, "accounts", "create"], check=True, capture_output=True, env=env).stdout)["test_key"]
        req = urllib.request.Request(f"http://127.0.0.1:{_API.port}/_aws/execute-api/{res['HttpApi']}/dev/v1/events/evt_01M86Q64X5F9SJQX46N8MH7WTH",
                                     headers={"Authorization": f"Bearer {key}"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        assert e.value.code == 500
        assert json.loads(e.value.read())["error"]["type"] == "api_error"
        # The same request on the complete stack is an ordinary 404.
        status, _ = call("GET", "/v1/events/evt_01M86Q64X5F9SJQX46N8MH7WTH", json.loads(subprocess.run([BIN, "accounts", "create"], check=True, capture_output=True).stdout)["test_key"])
        assert status == 404
    finally:
        cf.delete_stack(StackName=stack)


def test_the_functions_role_is_refused_what_its_policies_leave_out():
    """The role GetEventFunction runs with may read the Events table; a write is refused."""
    lam = boto3.client("lambda")
    role = lam.get_function_configuration(FunctionName=physical("GetEventFunction"))["Role"]
    c = boto3.client("sts").assume_role(RoleArn=role, RoleSessionName="acceptance")["Credentials"]
    ddb = boto3.client("dynamodb", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
    table = os.environ["PAYGATE_EVENTS_TABLE"]
    ddb.get_item(TableName=table, Key={"pk": {"S": "acct_x#test"}, "id": {"S": "evt_x"}})
    with pytest.raises(ddb.exceptions.ClientError) as e:
        ddb.put_item(TableName=table, Item={"pk": {"S": "acct_x#test"}, "id": {"S": "evt_x"}})
    assert "not authorized to perform: dynamodb:PutItem" in str(e.value)


def test_a_stack_update_with_a_changed_parameter_takes_effect():
    """`make deploy-local` again, with another retry schedule: updated in place."""
    subprocess.run([os.path.join(ROOT, "scripts", "deploy-local.sh")], check=True, capture_output=True, env={**os.environ, "RETRY_SCHEDULE": "5,7"})
    conf = boto3.client("lambda").get_function_configuration(FunctionName=physical("DeliverWebhooksFunction"))
    assert conf["Environment"]["Variables"]["PAYGATE_RETRY_SCHEDULE"] == "5,7"


def test_the_cli_works_against_the_stack_with_no_settings():
    """`paygate --deployed …` finds the stack's names itself (saved by the deploy from the stack's
    resources): a clean environment, no AWS or PAYGATE variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PAYGATE_"))}
    run = lambda *args: subprocess.run([BIN, "--deployed", *args], check=True, capture_output=True, env=clean).stdout
    made = json.loads(run("accounts", "create"))
    key = made["test_key"]
    published = [json.loads(line) for line in run("trigger", "payout.completed", "--api-key", key, "--count", "2").splitlines()]
    status, page = call("GET", "/v1/events?type=payout.completed", key)
    assert status == 200 and [e["id"] for e in page["data"]] == [p["id"] for p in reversed(published)]
    # A producer's file, published twice against the stack: the same event both times.
    lines = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"paygate-publish-{time.time_ns()}.jsonl")
    with open(lines, "w") as f:
        f.write(json.dumps(_input(made, "payout.failed", {"id": "po_1", "object": "payout"}, "po_1-failed")) + "\n")
    first, again = (json.loads(run("publish", "--file", lines)) for _ in range(2))
    os.remove(lines)
    assert first["line"] == 1 and again["event"]["id"] == first["event"]["id"], (first, again)
    status, page = call("GET", "/v1/events?type=payout.failed", key)
    assert [e["id"] for e in page["data"]] == [first["event"]["id"]]
