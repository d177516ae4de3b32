"""The client beyond the reference: auto-paging, errors, idempotency, endpoints, real deliveries."""

import http.server
import threading
from datetime import datetime, timedelta, timezone

import pytest

import paygate
from conftest import BASE, eventually


@pytest.fixture
def client(account):
    return paygate.PayGate(account["test_key"], base_url=BASE)


def test_auto_paging_walks_every_page_both_ways(client, trigger):
    ids = [e["id"] for e in trigger("customer.deleted", 255)]
    forward = [e.id for e in client.events.list(type="customer.deleted", limit=100).auto_paging_iter()]
    assert forward == ids[::-1], "all 255, newest first, each once"
    backward = [e.id for e in client.events.list(type="customer.deleted", limit=100, ending_before=ids[0]).auto_paging_iter()]
    assert len(backward) == 254 and set(backward) == set(ids[1:])
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    recent = client.events.list(type="customer.deleted", created={"gte": an_hour_ago}, limit=100)
    assert len(list(recent.auto_paging_iter())) == 255


def test_errors_have_one_class_per_type(client):
    with pytest.raises(paygate.InvalidRequestError) as e:
        client.events.list(limit=1000)
    assert (e.value.status_code, e.value.param) == (400, "limit")
    assert e.value.request_id.startswith("req_")
    with pytest.raises(paygate.AuthenticationError) as e:
        paygate.PayGate("sk_test_doesNotExist0000000000000", base_url=BASE).events.list()
    assert (e.value.status_code, e.value.code) == (401, "api_key_invalid")
    with pytest.raises(paygate.InvalidRequestError) as e:
        client.events.retrieve("evt_01M86Q64X5F9SJQX46N8MH7WTH")
    assert (e.value.status_code, e.value.code) == (404, "resource_missing")
    assert isinstance(e.value, paygate.PayGateError)
    with pytest.raises(paygate.APIConnectionError):
        paygate.PayGate("sk_test_x", base_url="http://127.0.0.1:9", max_retries=1).events.list()
    assert paygate.PayGate("sk_test_x").base_url == paygate.DEFAULT_BASE_URL


def test_endpoints_and_a_real_delivery_verified_both_ways(client, trigger):
    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((body, dict(self.headers)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        a = client.webhooks.endpoints.create(url=url, events=["refund.*"], idempotency_key="py-sdk-1")
        b = client.webhooks.endpoints.create(url=url, events=["refund.*"], idempotency_key="py-sdk-1")
        assert a.id == b.id and a.secret.startswith("whsec_")
        sent = trigger("refund.succeeded")[0]
        body, headers = eventually(lambda: got and got[0], "a delivery")
        event = paygate.Webhook.construct_event(body, headers["x-paygate-signature"], a.secret)
        assert event.id == sent["id"] and event.data.object.id == sent["data"]["object"]["id"]
        assert paygate.Webhook.verify_standard(body, headers, a.secret).id == sent["id"]
        with pytest.raises(paygate.WebhookSignatureError):
            paygate.Webhook.construct_event(body, headers["x-paygate-signature"], client.webhooks.endpoints.rotate_secret(a.id).secret + "x")
        updated = client.webhooks.endpoints.update(a.id, description="refunds", events=["refund.created"], rate_limit=25)
        assert updated.enabled_events == ["refund.created"]
        assert updated.rate_limit == 25 and updated.health.state == "closed" and updated.health.consecutive_failures == 0
        assert client.webhooks.endpoints.update(a.id, rate_limit="").rate_limit is None
        assert any(e.id == a.id for e in client.webhooks.endpoints.list().data)
        deliveries = eventually(lambda: [d for d in client.events.deliveries(sent["id"]).data if d.status == "succeeded"], "the attempt record")
        assert deliveries[0].endpoint == a.id
        assert client.webhooks.endpoints.resend(a.id, event=sent["id"]).status == "pending"
        assert client.webhooks.endpoints.recover(a.id, since=datetime.now(timezone.utc) - timedelta(hours=1)).object == "webhook_recovery"
        stats = client.webhooks.endpoints.stats(a.id, since=datetime.now(timezone.utc) - timedelta(days=7))
        assert (stats.object, stats.interval, stats.endpoint) == ("webhook_endpoint_stats", "day", a.id)
        assert stats.has_more is False
        assert client.webhooks.endpoints.delete(a.id).deleted is True
    finally:
        server.shutdown()


def test_the_key_never_follows_a_redirect_to_another_host():
    """A redirect (a compromised proxy, a misconfigured base URL) must not carry the API key on."""
    seen = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_):
            pass

    elsewhere = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirect(Elsewhere):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{elsewhere.server_port}/v1/events")
            self.end_headers()

    redirecting = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for server in (elsewhere, redirecting):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(paygate.PayGateError):
            paygate.PayGate("sk_test_secret", base_url=f"http://127.0.0.1:{redirecting.server_port}", max_retries=0).events.list()
        assert seen == [], f"the redirect was followed: {seen}"
    finally:
        elsewhere.shutdown()
        redirecting.shutdown()


def test_api_keys_restricted_rolled_and_revoked():
    import json
    import subprocess

    from conftest import BIN

    own = json.loads(subprocess.run([BIN, "accounts", "create"], check=True, capture_output=True).stdout)
    client = paygate.PayGate(own["live_key"], base_url=BASE)
    keys = client.api_keys.list()
    assert [k.type for k in keys.data] == ["secret"] and keys.data[0].livemode
    restricted = client.api_keys.create(name="ops", permissions={"webhook_endpoints": "read"})
    assert restricted.secret.startswith("rk_live_")
    assert restricted.permissions.to_dict() == {"events": "none", "webhook_endpoints": "read"}
    ops = paygate.PayGate(restricted.secret, base_url=BASE)
    assert ops.webhook_endpoints.list().data == []
    with pytest.raises(paygate.PermissionError) as e:
        ops.events.list()
    assert (e.value.status_code, e.value.code) == (403, "insufficient_permissions")
    assert isinstance(e.value, paygate.PayGateError)
    with pytest.raises(paygate.InvalidRequestError) as e:
        client.api_keys.create(permissions={"events": "write"})
    assert e.value.param == "permissions[events]"
    # An hour's grace: both keys work until the old one is revoked.
    rolled = client.api_keys.roll(keys.data[0].id, expires_in=3600)
    assert rolled.secret.startswith("sk_live_") and rolled.id != keys.data[0].id
    renewed = paygate.PayGate(rolled.secret, base_url=BASE)
    assert {k.id for k in renewed.api_keys.list().auto_paging_iter()} == {rolled.id, restricted.id, keys.data[0].id}
    renewed.api_keys.revoke(keys.data[0].id)
    with pytest.raises(paygate.AuthenticationError):
        client.events.list()
    renewed.api_keys.revoke(restricted.id)
    with pytest.raises(paygate.AuthenticationError):
        ops.webhook_endpoints.list()
