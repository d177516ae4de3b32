"""One error class per error `type` the API answers."""

from typing import Any, Optional


class PayGateError(Exception):
    """An error the API answered (or could not answer), with what it said."""

    def __init__(
        self,
        message: str,
        *,
        type: Optional[str] = None,
        status_code: Optional[int] = None,
        code: Optional[str] = None,
        param: Optional[str] = None,
        request_id: Optional[str] = None,
        raw: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.status_code = status_code
        self.code = code
        self.param = param
        self.request_id = request_id
        self.raw = raw


class InvalidRequestError(PayGateError):
    """400 and 404: a wrong parameter or an unknown id."""


class AuthenticationError(PayGateError):
    """401: no key, or a malformed, unknown or revoked key."""


class PermissionError(PayGateError):  # noqa: A001 (Stripe's name; paygate.PermissionError)
    """403: a restricted key without the permission the call needs (or managing keys, which
    takes a secret key)."""


class IdempotencyError(PayGateError):
    """An Idempotency-Key reused with other parameters (400) or still in use (409)."""


class RateLimitError(PayGateError):
    """429: too many requests."""


class APIError(PayGateError):
    """5xx: a failure on PayGate's side."""


class APIConnectionError(PayGateError):
    """The API could not be reached (after the retries)."""


class WebhookSignatureError(Exception):
    """A webhook whose signature does not verify."""


ERRORS = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionError,
    "idempotency_error": IdempotencyError,
    "rate_limit_error": RateLimitError,
    "api_error": APIError,
}
