"""Signature verification: both schemes, several v1 signatures, and every way to fail."""

import base64
import hashlib
import hmac
import json
import os
import time

import pytest

from paygate import Webhook, WebhookSignatureError

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
BODY = json.dumps({"id": "evt_01M86Q64X5F9SJQX46N8MH7WTH", "object": "event", "type": "payment.succeeded", "data": {"object": {"id": "pay_1", "object": "payment"}}})


def v1(secret, t, body):
    return hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()


def test_construct_event_accepts_bytes_or_str_and_any_v1():
    t = int(time.time())
    header = f"t={t},v1={v1('whsec_old', t, BODY)},v1={v1(SECRET, t, BODY)}"
    assert Webhook.construct_event(BODY.encode(), header, SECRET).data.object.id == "pay_1"
    assert Webhook.construct_event(BODY, header, SECRET)["type"] == "payment.succeeded"


def test_tampered_expired_wrong_secret_and_malformed_are_refused():
    t = int(time.time())
    header = f"t={t},v1={v1(SECRET, t, BODY)}"
    old = t - 301
    for args in [
        (BODY.replace("pay_1", "pay_2"), header, SECRET),
        (BODY, f"t={old},v1={v1(SECRET, old, BODY)}", SECRET),
        (BODY, header, "whsec_" + base64.b64encode(os.urandom(32)).decode()),
        (BODY, "", SECRET),
        (BODY, f"v1={v1(SECRET, t, BODY)}", SECRET),
        (json.loads(BODY), header, SECRET),
    ]:
        with pytest.raises(WebhookSignatureError):
            Webhook.construct_event(*args)
    assert Webhook.construct_event(BODY, f"t={old},v1={v1(SECRET, old, BODY)}", SECRET, tolerance=0)


def test_verify_standard():
    t = str(int(time.time()))
    msg_id = "evt_01M86Q64X5F9SJQX46N8MH7WTH"
    key = base64.b64decode(SECRET[len("whsec_"):])
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{t}.{BODY}".encode(), hashlib.sha256).digest()).decode()
    headers = {"Webhook-Id": msg_id, "Webhook-Timestamp": t, "Webhook-Signature": f"v1,{sig}"}
    assert Webhook.verify_standard(BODY, headers, SECRET).id == msg_id
    with pytest.raises(WebhookSignatureError):
        Webhook.verify_standard(BODY + " ", headers, SECRET)
    with pytest.raises(WebhookSignatureError):
        Webhook.verify_standard(BODY, {**headers, "Webhook-Id": "evt_other"}, SECRET)


def test_a_missing_or_empty_secret_verifies_nothing_in_both_schemes():
    t = int(time.time())
    msg_id = "evt_01M86Q64X5F9SJQX46N8MH7WTH"
    # What a forger signs with when the receiver's secret variable is unset: the empty key.
    forged = f"t={t},v1={v1('', t, BODY)}"
    empty_key_sig = base64.b64encode(hmac.new(b"", f"{msg_id}.{t}.{BODY}".encode(), hashlib.sha256).digest()).decode()
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(t), "webhook-signature": f"v1,{empty_key_sig}"}
    for missing in ["", None]:
        with pytest.raises(WebhookSignatureError):
            Webhook.construct_event(BODY, forged, missing)
    for missing in ["", "whsec_", None]:
        with pytest.raises(WebhookSignatureError):
            Webhook.verify_standard(BODY, headers, missing)


def test_any_header_raises_only_webhook_signature_error():
    t = int(time.time())
    for header in [f"t=١٢٣,v1={v1(SECRET, t, BODY)}", f"t={t},v1=é{v1(SECRET, t, BODY)[1:]}", "t=\udcff,v1=00"]:
        with pytest.raises(WebhookSignatureError):
            Webhook.construct_event(BODY, header, SECRET)
    for ts, sig in [("١٢٣", "v1,AAAA"), (str(t), "v1,é"), (str(t), "v1,\udcff")]:
        with pytest.raises(WebhookSignatureError):
            Webhook.verify_standard(BODY, {"webhook-id": "evt_1", "webhook-timestamp": ts, "webhook-signature": sig}, SECRET)


def test_a_negative_or_non_integer_tolerance_is_refused_and_zero_turns_the_check_off():
    t = int(time.time()) - 3600
    header = f"t={t},v1={v1(SECRET, t, BODY)}"
    assert Webhook.construct_event(BODY, header, SECRET, tolerance=0)
    for bad in [-1, -300, 1.5, "300", True, None]:
        with pytest.raises(ValueError):
            Webhook.construct_event(BODY, header, SECRET, tolerance=bad)
        with pytest.raises(ValueError):
            Webhook.verify_standard(BODY, {}, SECRET, tolerance=bad)
