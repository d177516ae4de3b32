"""PayGate Events: the API client and webhook signature verification. Standard library only."""

from ._client import DEFAULT_BASE_URL, PayGate
from ._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    IdempotencyError,
    InvalidRequestError,
    PayGateError,
    PermissionError,
    RateLimitError,
    WebhookSignatureError,
)
from ._object import ListObject, PayGateObject
from ._webhook import DEFAULT_TOLERANCE, Webhook

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "DEFAULT_BASE_URL",
    "DEFAULT_TOLERANCE",
    "IdempotencyError",
    "InvalidRequestError",
    "ListObject",
    "PayGate",
    "PayGateError",
    "PayGateObject",
    "PermissionError",
    "RateLimitError",
    "Webhook",
    "WebhookSignatureError",
]
