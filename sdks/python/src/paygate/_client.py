"""The HTTP client and its resources."""

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple, Union

from ._errors import ERRORS, APIConnectionError, APIError, PayGateError
from ._object import ListObject, PayGateObject, convert

DEFAULT_BASE_URL = "https://api.paygate.example"
VERSION = "0.1.0"

Timestamp = Union[int, str, datetime]


def _time(v: Any) -> Any:
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return v


def encode_query(params: Dict[str, Any], prefix: str = "") -> List[Tuple[str, str]]:
    """The API's bracket form: `created[gte]=…`, `types[]=…`."""
    out: List[Tuple[str, str]] = []
    for k, v in params.items():
        if v is None:
            continue
        key = f"{prefix}[{k}]" if prefix else k
        if isinstance(v, (list, tuple)):
            out.extend((f"{key}[]", str(x)) for x in v)
        elif isinstance(v, dict):
            out.extend(encode_query(v, key))
        elif isinstance(v, bool):
            out.append((key, "true" if v else "false"))
        else:
            out.append((key, str(_time(v))))
    return out


def _backoff(attempt: int) -> float:
    base = min(0.5 * 2**attempt, 8.0)
    return base / 2 + random.random() * base / 2


class PayGate:
    """The PayGate API. `PayGate("sk_test_…", base_url="http://127.0.0.1:3000")`."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        max_retries: int = 2,
        timeout: float = 30.0,
        auto_idempotency_key: bool = True,
    ) -> None:
        if not api_key:
            raise ValueError("PayGate: an API key (sk_test_… or sk_live_…) is required")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.timeout = timeout
        self.auto_idempotency_key = auto_idempotency_key
        self.events = Events(self)
        self.webhook_endpoints = WebhookEndpoints(self)
        self.webhooks = _Webhooks(self.webhook_endpoints)
        self.api_keys = ApiKeys(self)

    def _request(
        self,
        method: str,
        path: str,
        query: Optional[Dict[str, Any]] = None,
        body: Optional[Dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
    ) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(encode_query(query))
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "User-Agent": f"paygate-python/{VERSION}",
            "Accept": "application/json",
        }
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps({k: _time(v) for k, v in body.items() if v is not None}).encode()
        if idempotency_key is None and method == "POST" and self.auto_idempotency_key:
            idempotency_key = str(uuid.uuid4())
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        # A POST without a key is not retried: it might have happened.
        retries = 0 if method == "POST" and idempotency_key is None else self.max_retries
        attempt = 0
        while True:
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with _OPENER.open(req, timeout=self.timeout) as resp:
                    return convert(json.loads(resp.read() or b"{}"))
            except urllib.error.HTTPError as e:
                status, raw, request_id = e.code, e.read(), e.headers.get("Request-Id")
                retry_after = e.headers.get("Retry-After")
                if (status == 429 or status >= 500) and attempt < retries:
                    wait = float(retry_after) if retry_after and retry_after.isdigit() else _backoff(attempt)
                    time.sleep(min(wait, 60.0))
                    attempt += 1
                    continue
                raise _error(status, raw, request_id) from None
            except (urllib.error.URLError, OSError) as e:
                if attempt < retries:
                    time.sleep(_backoff(attempt))
                    attempt += 1
                    continue
                reason = getattr(e, "reason", e)
                raise APIConnectionError(f"Could not reach PayGate ({url}): {reason}") from None

    def _list(self, path: str, params: Dict[str, Any]) -> ListObject:
        page = self._request("GET", path, query=params)
        if not isinstance(page, ListObject):
            page = ListObject(page)
        return page._bind(self, path, params)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The API never redirects. urllib would follow a redirect with the same headers, the API key
    included, to whatever host it names; a 3xx is an error instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _error(status: int, raw: bytes, request_id: Optional[str]) -> PayGateError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"error": {"type": "api_error", "message": raw.decode("utf-8", "replace")}}
    err = body.get("error") or {}
    cls = ERRORS.get(err.get("type") or "", APIError if status >= 500 else PayGateError)
    return cls(
        err.get("message") or f"HTTP {status}",
        type=err.get("type"),
        status_code=status,
        code=err.get("code"),
        param=err.get("param"),
        request_id=request_id,
        raw=body,
    )


def _id(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"PayGate: {what} id is required")
    return urllib.parse.quote(value, safe="")


class Events:
    def __init__(self, client: PayGate) -> None:
        self._client = client

    def retrieve(self, id: str) -> PayGateObject:
        """GET /v1/events/{id}"""
        return self._client._request("GET", f"/v1/events/{_id(id, 'an event')}")

    def list(self, **params: Any) -> ListObject:
        """GET /v1/events: `limit`, `starting_after`, `ending_before`, `type`, `types`, `created`
        (a timestamp or a dict of gt/gte/lt/lte). The page; `.auto_paging_iter()` walks them all."""
        return self._client._list("/v1/events", params)

    def deliveries(self, id: str, **params: Any) -> ListObject:
        """GET /v1/events/{id}/deliveries: the event's delivery attempts, oldest first (`limit`,
        `starting_after`, `ending_before`). The page; `.auto_paging_iter()` walks them all."""
        return self._client._list(f"/v1/events/{_id(id, 'an event')}/deliveries", params)


class WebhookEndpoints:
    def __init__(self, client: PayGate) -> None:
        self._client = client

    def _path(self, id: str, rest: str = "") -> str:
        return f"/v1/webhook_endpoints/{_id(id, 'an endpoint')}{rest}"

    def create(self, *, idempotency_key: Optional[str] = None, **params: Any) -> PayGateObject:
        """`url`, `events` (or `enabled_events`), `description`; the answer has the secret."""
        return self._client._request("POST", "/v1/webhook_endpoints", body=params, idempotency_key=idempotency_key)

    def retrieve(self, id: str) -> PayGateObject:
        return self._client._request("GET", self._path(id))

    def update(self, id: str, *, idempotency_key: Optional[str] = None, **params: Any) -> PayGateObject:
        return self._client._request("POST", self._path(id), body=params, idempotency_key=idempotency_key)

    def list(self, **params: Any) -> ListObject:
        return self._client._list("/v1/webhook_endpoints", params)

    def delete(self, id: str) -> PayGateObject:
        return self._client._request("DELETE", self._path(id))

    def rotate_secret(self, id: str, *, idempotency_key: Optional[str] = None) -> PayGateObject:
        return self._client._request("POST", self._path(id, "/rotate_secret"), body={}, idempotency_key=idempotency_key)

    def resend(self, id: str, *, event: str, idempotency_key: Optional[str] = None) -> PayGateObject:
        return self._client._request("POST", self._path(id, "/resend"), body={"event": event}, idempotency_key=idempotency_key)

    def recover(self, id: str, *, since: Timestamp, idempotency_key: Optional[str] = None) -> PayGateObject:
        """Re-queue every finally failed delivery to this endpoint since a time."""
        return self._client._request("POST", self._path(id, "/recover"), body={"since": since}, idempotency_key=idempotency_key)

    def stats(self, id: str, *, since: Optional[Timestamp] = None, until: Optional[Timestamp] = None, interval: Optional[str] = None) -> PayGateObject:
        """The endpoint's health over a window (default the last 24 hours): success rate, p50/p95
        latency, per ``interval`` ("hour" or "day"), and the most recent failures."""
        query = {k: _time(v) for k, v in {"since": since, "until": until}.items() if v is not None}
        if interval is not None:
            query["interval"] = interval
        return self._client._request("GET", self._path(id, "/stats"), query=query)


class _Webhooks:
    def __init__(self, endpoints: WebhookEndpoints) -> None:
        self.endpoints = endpoints


class ApiKeys:
    """The account's keys in this key's mode (``/v1/api_keys``); secret keys only."""

    def __init__(self, client: PayGate) -> None:
        self._client = client

    def _path(self, id: str, rest: str) -> str:
        return f"/v1/api_keys/{_id(id, 'an API key')}{rest}"

    def list(self, **params: Any) -> ListObject:
        """The keys that work, newest first (never the keys themselves)."""
        return self._client._list("/v1/api_keys", params)

    def create(
        self, *, name: Optional[str] = None, permissions: Optional[Dict[str, str]] = None, idempotency_key: Optional[str] = None
    ) -> PayGateObject:
        """A restricted key: ``permissions={"events": "read", "webhook_endpoints": "write"}``
        (each ``none`` unless given). The answer's ``secret`` is the key, shown once."""
        return self._client._request("POST", "/v1/api_keys", body={"name": name, "permissions": permissions}, idempotency_key=idempotency_key)

    def roll(self, id: str, *, expires_in: int = 0, idempotency_key: Optional[str] = None) -> PayGateObject:
        """A new key in place of this one (its ``secret`` shown once); the old key works
        ``expires_in`` more seconds (0, now, to 604800, 7 days)."""
        return self._client._request("POST", self._path(id, "/roll"), body={"expires_in": expires_in}, idempotency_key=idempotency_key)

    def revoke(self, id: str, *, idempotency_key: Optional[str] = None) -> PayGateObject:
        """A restricted key, or a rolled secret key, stops working now."""
        return self._client._request("POST", self._path(id, "/revoke"), body={}, idempotency_key=idempotency_key)
