// Type declarations of @paygate/node.

export declare const VERSION: string
export declare const DEFAULT_BASE_URL: string
export declare const DEFAULT_TOLERANCE: number

export type EventType =
  | 'payment.created' | 'payment.pending' | 'payment.processing' | 'payment.succeeded' | 'payment.failed' | 'payment.canceled'
  | 'subscription.created' | 'subscription.updated' | 'subscription.canceled' | 'subscription.paused' | 'subscription.resumed'
  | 'subscription.trial_will_end' | 'subscription.payment_succeeded' | 'subscription.payment_failed'
  | 'payout.created' | 'payout.processing' | 'payout.completed' | 'payout.failed' | 'payout.canceled'
  | 'refund.created' | 'refund.succeeded' | 'refund.failed'
  | 'checkout.session.completed' | 'checkout.session.expired'
  | 'customer.created' | 'customer.updated' | 'customer.deleted'
  | (string & {})

export interface Event {
  id: string
  object: 'event'
  type: EventType
  created_at: string
  data: { object: { id: string; object: string; [key: string]: unknown } }
  pending_webhooks: number
  request: { id: string | null; idempotency_key: string | null }
}

export interface List<T> extends AsyncIterable<T> {
  object: 'list'
  data: T[]
  has_more: boolean
  url: string
}

/** The first page when awaited; every item, page after page, with `for await`. */
export type ListPromise<T> = Promise<List<T>> & AsyncIterable<T>

export type Timestamp = number | string | Date

export interface EventListParams {
  limit?: number
  starting_after?: string
  ending_before?: string
  type?: string
  types?: string[]
  created?: Timestamp | { gt?: Timestamp; gte?: Timestamp; lt?: Timestamp; lte?: Timestamp }
}

export interface WebhookEndpoint {
  id: string
  object: 'webhook_endpoint'
  url: string
  enabled_events: string[]
  description: string | null
  status: 'enabled' | 'disabled'
  created_at: string
  livemode: boolean
  /** At most this many deliveries per second; null: no limit. */
  rate_limit: number | null
  /** The endpoint's circuit breaker. */
  health: EndpointHealth
  /** Only on creation and on rotation. */
  secret?: string
}

/**
 * An endpoint's circuit breaker: `open` after 5 failed attempts in a row (deliveries wait, one
 * probe at `next_probe_at`), `closed` again after a success. A 429 pauses it until `paused_until`;
 * 5 days of failure disable the endpoint (`disabled_reason`); `slow` endpoints (2 s or more per
 * attempt) get at most 10 attempts at once; `slow_lane` endpoints (0.5 s or more) are delivered
 * from a queue of their own, so that they never hold up other merchants' webhooks.
 */
export interface EndpointHealth {
  state: 'closed' | 'open'
  consecutive_failures: number
  failing_since: string | null
  next_probe_at: string | null
  paused_until: string | null
  disabled_reason: string | null
  slow: boolean
  slow_lane: boolean
}

export interface EndpointCreateParams {
  url: string
  /** Event types, family wildcards (`payment.*`) or `*`. `enabled_events` works too. */
  events?: string[]
  enabled_events?: string[]
  description?: string
  /** Deliveries per second, 1 to 10000. */
  rate_limit?: number
}

export interface EndpointUpdateParams {
  url?: string
  events?: string[]
  enabled_events?: string[]
  description?: string
  /** Enabling a disabled endpoint resets its breaker. */
  status?: 'enabled' | 'disabled'
  /** Deliveries per second, 1 to 10000; null or '' removes the limit. */
  rate_limit?: number | null | ''
}

export interface DeliveryAttempt {
  /** `whatt_…`: the cursor of the event's attempts. */
  id: string
  object: 'webhook_delivery_attempt'
  event: string
  endpoint: string
  attempt: number
  status: 'succeeded' | 'failed'
  http_status: number | null
  latency_ms: number
  error: string | null
  response_body: string | null
  created_at: string
  next_retry_at: string | null
}

export interface AttemptTally {
  attempts: number
  succeeded: number
  failed: number
  /** Null without attempts. */
  success_rate: number | null
  latency_ms: { p50: number | null; p95: number | null }
}

export interface EndpointStats extends AttemptTally {
  object: 'webhook_endpoint_stats'
  endpoint: string
  since: string
  until: string
  interval: 'hour' | 'day'
  /** The endpoint's circuit breaker now. */
  health: EndpointHealth
  series: Array<AttemptTally & { start: string }>
  recent_failures: Array<{ event: string; attempt: number; created: string; http_status: number | null; error: string | null; latency_ms: number }>
  /** More attempts fell in the window than were counted (the newest 10,000 were). */
  has_more: boolean
}

export interface RequestOptions { idempotencyKey?: string }

export interface PayGateOptions {
  /** Default {@link DEFAULT_BASE_URL}. */
  baseUrl?: string
  /** Retries of network errors, 429 and 5xx (with backoff). Default 2. */
  maxRetries?: number
  /** Milliseconds per request. Default 30000. */
  timeout?: number
  /** Give every POST an Idempotency-Key so it can be retried safely. Default true. */
  autoIdempotencyKey?: boolean
}

declare class Events {
  retrieve (id: string): Promise<Event>
  list (params?: EventListParams): ListPromise<Event>
  deliveries (id: string, params?: { limit?: number; starting_after?: string; ending_before?: string }): ListPromise<DeliveryAttempt>
}

declare class WebhookEndpoints {
  create (params: EndpointCreateParams, options?: RequestOptions): Promise<WebhookEndpoint>
  retrieve (id: string): Promise<WebhookEndpoint>
  update (id: string, params: EndpointUpdateParams, options?: RequestOptions): Promise<WebhookEndpoint>
  list (params?: { limit?: number; starting_after?: string; ending_before?: string }): ListPromise<WebhookEndpoint>
  del (id: string): Promise<{ id: string; object: 'webhook_endpoint'; deleted: true }>
  rotateSecret (id: string, options?: RequestOptions): Promise<WebhookEndpoint>
  resend (id: string, params: { event: string }, options?: RequestOptions): Promise<{ object: 'webhook_resend'; event: string; endpoint: string; status: 'pending' }>
  /** At most 100 a call; when `has_more`, call again for the next ones. */
  recover (id: string, params: { since: Timestamp }, options?: RequestOptions): Promise<{ object: 'webhook_recovery'; endpoint: string; since: string; queued: number; events: string[]; has_more: boolean }>
  stats (id: string, params?: { since?: Timestamp; until?: Timestamp; interval?: 'hour' | 'day' }): Promise<EndpointStats>
}

export type Access = 'none' | 'read' | 'write'

export interface Permissions {
  events?: 'none' | 'read'
  webhook_endpoints?: Access
}

export interface ApiKey {
  id: string
  object: 'api_key'
  type: 'secret' | 'restricted'
  name: string | null
  /** `sk_test_…abcd`: kind, mode and last four characters. */
  hint: string
  /** A restricted key's permissions; null for a secret key. */
  permissions: Required<Permissions> | null
  created: string
  /** When a rolled key stops working. */
  expires_at: string | null
  /** Midnight UTC of the last day the key was used. */
  last_used: string | null
  livemode: boolean
  /** The whole key: only in the answer to create and roll. */
  secret?: string
}

declare class ApiKeys {
  list (params?: { limit?: number; starting_after?: string; ending_before?: string }): ListPromise<ApiKey>
  create (params?: { name?: string; permissions?: Permissions }, options?: RequestOptions): Promise<ApiKey>
  /** `expires_in`: seconds the old key keeps working, 0 (default) to 604800. */
  roll (id: string, params?: { expires_in?: number }, options?: RequestOptions): Promise<ApiKey>
  revoke (id: string, options?: RequestOptions): Promise<ApiKey>
}

export declare class PayGate {
  constructor (apiKey: string, options?: PayGateOptions)
  readonly baseUrl: string
  readonly events: Events
  readonly webhooks: { endpoints: WebhookEndpoints }
  readonly webhookEndpoints: WebhookEndpoints
  /** The account's keys; secret keys only. */
  readonly apiKeys: ApiKeys
}
export default PayGate

export declare class PayGateError extends Error {
  readonly type: string | null
  readonly statusCode: number | null
  readonly code: string | null
  readonly param: string | null
  readonly requestId: string | null
  readonly raw: unknown
}
export declare class InvalidRequestError extends PayGateError {}
export declare class AuthenticationError extends PayGateError {}
export declare class PermissionError extends PayGateError {}
export declare class IdempotencyError extends PayGateError {}
export declare class RateLimitError extends PayGateError {}
export declare class APIError extends PayGateError {}
export declare class APIConnectionError extends PayGateError {}
export declare class WebhookSignatureError extends Error {}

export declare const Webhook: {
  /** Verifies `x-paygate-signature` over the raw body; returns the event or throws WebhookSignatureError. */
  constructEvent (payload: Buffer | string | Uint8Array, header: string | string[] | undefined, secret: string, tolerance?: number): Event
  /** Verifies the Standard Webhooks headers; returns the event or throws WebhookSignatureError. */
  verifyStandard (payload: Buffer | string | Uint8Array, headers: Record<string, string | undefined> | { get (name: string): string | null }, secret: string, tolerance?: number): Event
}
