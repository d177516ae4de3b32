"""Webhook signature verification: PayGate's `x-paygate-signature` and Standard Webhooks."""

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Mapping, Union

from ._errors import WebhookSignatureError
from ._object import PayGateObject, convert

DEFAULT_TOLERANCE = 300

Payload = Union[bytes, bytearray, str]


def _bytes(payload: Payload) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    raise WebhookSignatureError("The payload must be the raw request body (bytes or str), not parsed JSON")


def _check_tolerance(tolerance: int) -> None:
    """A tolerance is seconds, 0 or more; 0 turns the time check off (as Stripe's). Anything else
    is a bug of the caller's: a ValueError, not a signature failure."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise ValueError(f"tolerance must be seconds, 0 or more (0 turns the time check off), not {tolerance!r}")


def _check_time(t: int, tolerance: int) -> None:
    if tolerance > 0 and abs(int(time.time()) - t) > tolerance:
        raise WebhookSignatureError("The signature timestamp is outside the tolerance")


def _event(body: bytes) -> PayGateObject:
    return convert(json.loads(body.decode("utf-8")))


class Webhook:
    @staticmethod
    def construct_event(payload: Payload, sig_header: str, secret: str, tolerance: int = DEFAULT_TOLERANCE) -> PayGateObject:
        """Verifies `x-paygate-signature` (`t=…,v1=…[,v1=…]`) over the raw body and returns the event.
        Raises WebhookSignatureError."""
        _check_tolerance(tolerance)
        body = _bytes(payload)
        if not sig_header:
            raise WebhookSignatureError("No signature header (x-paygate-signature)")
        if not isinstance(secret, str) or not secret.strip():
            raise WebhookSignatureError("No endpoint secret")
        t = None
        signatures = []
        for part in sig_header.split(","):
            k, _, v = part.strip().partition("=")
            # ASCII only: "١٢٣".isdigit() is true, and compare_digest refuses non-ASCII str.
            if k == "t" and v.isascii() and v.isdigit():
                t = int(v)
            elif k == "v1" and v and v.isascii():
                signatures.append(v)
        if t is None or not signatures:
            raise WebhookSignatureError("Unable to extract a timestamp and v1 signatures from the header")
        expected = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, s) for s in signatures):
            raise WebhookSignatureError("No signature matches the expected signature for the payload")
        _check_time(t, tolerance)
        return _event(body)

    @staticmethod
    def verify_standard(payload: Payload, headers: Mapping[str, Any], secret: str, tolerance: int = DEFAULT_TOLERANCE) -> PayGateObject:
        """Verifies the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
        `webhook-signature`) and returns the event. Raises WebhookSignatureError."""
        _check_tolerance(tolerance)
        body = _bytes(payload)
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        msg_id, ts, sig = lower.get("webhook-id", ""), lower.get("webhook-timestamp", ""), lower.get("webhook-signature", "")
        if not msg_id or not ts.isascii() or not ts.isdigit() or not sig:
            raise WebhookSignatureError("Missing Standard Webhooks headers")
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (ValueError, TypeError, AttributeError):
            raise WebhookSignatureError("The secret is not a whsec_ secret") from None
        if not key:
            # An empty or missing secret must not verify anything (an HMAC under an empty key).
            raise WebhookSignatureError("No endpoint secret")
        expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
        ok = any(
            version == "v1" and value.isascii() and hmac.compare_digest(expected, value)
            for version, _, value in (entry.partition(",") for entry in sig.split(" "))
        )
        if not ok:
            raise WebhookSignatureError("No signature matches the expected signature for the payload")
        _check_time(int(ts), tolerance)
        return _event(body)
