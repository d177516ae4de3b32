"""A deployed stack updated in place loses nothing (scripts/migration-test.sh, not in `make test`).

`before STATE`, on a stack of an older revision: an account, an endpoint whose receiver answers 500,
and events published through the deployed ingest function, whose deliveries finally fail. It saves
what it made in STATE (JSON).

`after STATE`, on the same stack updated to this revision: every old event reads and lists, and
its deliveries, re-queued with `recover`, reach a receiver that verifies them; events published
after the update are delivered too.
"""

import json
import os
import sys
import time

import boto3
from test_stack import Receiver, call, eventually, ingest, new_account, subscribe

TYPES = ["payment.succeeded", "refund.created", "payment.failed", "customer.created", "payout.completed", "payment.created"]


def before(path):
    account = new_account()
    key = account["test_key"]
    failing = Receiver(status=500)
    try:
        ep = subscribe(failing, key, ["*"])
        since = int(time.time()) - 1
        events = [ingest(account, t, {"id": f"obj_{i}", "object": "payment"}) for i, t in enumerate(TYPES)]
        # The retry schedule (1,2,4 s) runs out: four attempts each, then the final failure.
        for e in events:
            eventually(lambda e=e: call("GET", f"/v1/events/{e['id']}", key)[1].get("pending_webhooks") == 0, f"{e['id']} finally failed", bound=180)
        assert len(failing.got) >= 4 * len(events), len(failing.got)
    finally:
        failing.server.shutdown()
    with open(path, "w") as f:
        port = failing.server.server_address[1]
        json.dump({"account": account, "endpoint": ep["id"], "secret": ep["secret"], "port": port, "since": since, "events": [e["id"] for e in events]}, f)
    print(f"before: {len(events)} events of {account['account_id']}, their deliveries finally failed")


def after(path):
    with open(path) as f:
        state = json.load(f)
    account, key, old = state["account"], state["account"]["test_key"], state["events"]
    # Read and listed through the updated functions.
    for eid in old:
        status, got = call("GET", f"/v1/events/{eid}", key)
        assert status == 200 and got["id"] == eid and got["pending_webhooks"] == 0, (status, got)
    status, page = call("GET", "/v1/events?limit=100", key)
    assert status == 200 and [e["id"] for e in page["data"]] == list(reversed(old)), page
    status, page = call("GET", "/v1/events?limit=100&type=payment.*", key)
    assert [e["id"] for e in page["data"]] == [eid for eid, t in reversed(list(zip(old, TYPES))) if t.startswith("payment.")], page
    # Delivered to the endpoint as the old revision wrote it (no delivery copy: the new delivery
    # function reads the original and copies it), its receiver now answering 200; recover re-queues.
    table = boto3.client("dynamodb")
    endpoints_table = os.environ["PAYGATE_WEBHOOK_ENDPOINTS_TABLE"]
    copy_key = {"pk": {"S": f"{account['account_id']}#test#{state['endpoint']}"}, "id": {"S": state["endpoint"]}}
    assert "Item" not in table.get_item(TableName=endpoints_table, Key=copy_key), "the old revision wrote no copy"
    good = Receiver(port=state["port"])
    good.secret = state["secret"]
    try:
        status, recovery = call("POST", f"/v1/webhook_endpoints/{state['endpoint']}/recover", key, {"since": state["since"]})
        assert status == 200 and len(recovery["events"]) == len(old), recovery
        ids = lambda: {json.loads(body)["id"] for body, ok in good.got if ok}  # noqa: E731
        eventually(lambda: set(old) <= ids(), "every old event delivered and verified", bound=120)
        for eid in old:
            eventually(lambda eid=eid: call("GET", f"/v1/events/{eid}", key)[1].get("pending_webhooks") == 0, f"{eid} settled")
        copy = table.get_item(TableName=endpoints_table, Key=copy_key, ConsistentRead=True).get("Item")
        assert copy and copy["url"]["S"] == good.url, "the delivery function wrote the endpoint's copy"
        # An update through the new endpoints function moves both.
        status, ep = call("POST", f"/v1/webhook_endpoints/{state['endpoint']}", key, {"description": "after the update"})
        assert status == 200, ep
        copy = table.get_item(TableName=endpoints_table, Key=copy_key, ConsistentRead=True)["Item"]
        assert copy["description"]["S"] == "after the update"
        # And what is published after the update.
        new = [ingest(account, t, {"id": f"new_{i}", "object": "payment"})["id"] for i, t in enumerate(TYPES[:3])]
        eventually(lambda: set(new) <= ids(), "the new events delivered", bound=120)
        assert all(ok for _, ok in good.got), "every delivery verifies"
    finally:
        good.server.shutdown()
    # The old account's key, stored before key ids and the ByAccount index existed: the update
    # added the index in place, and the key gets its id when first read, so it lists and rolls.
    status, keys = call("GET", "/v1/api_keys", key)
    assert status == 200 and [k["type"] for k in keys["data"]] == ["secret"] and keys["data"][0]["id"].startswith("key_"), (status, keys)
    status, rolled = call("POST", f"/v1/api_keys/{keys['data'][0]['id']}/roll", key, {"expires_in": 600})
    assert status == 200 and rolled["secret"].startswith("sk_test_"), (status, rolled)
    assert call("GET", "/v1/events?limit=1", rolled["secret"])[0] == 200 and call("GET", "/v1/events?limit=1", key)[0] == 200, "both keys work during the grace"
    print(f"after: {len(old)} old events read, listed and delivered; {len(new)} new ones delivered; the old key listed and rolled")


if __name__ == "__main__":
    {"before": before, "after": after}[sys.argv[1]](sys.argv[2])
