// @paygate/node/client: the PayGate Events API client, safe in a browser as well as in Node.js
// (`fetch` only; no Node.js module). The package's main entry adds webhook signature verification.

export const VERSION = '0.1.0'
/** Where the client sends requests unless `baseUrl` says otherwise. */
export const DEFAULT_BASE_URL = 'https://api.paygate.example'

// ------------------------------------------------------------------ errors

/** Every error the API answers, with what it said. One subclass per error `type`. */
export class PayGateError extends Error {
  constructor (message, { type, statusCode, code, param, requestId, raw } = {}) {
    super(message)
    this.name = new.target.name
    this.type = type ?? null
    this.statusCode = statusCode ?? null
    this.code = code ?? null
    this.param = param ?? null
    this.requestId = requestId ?? null
    this.raw = raw ?? null
  }
}
/** 400 and 404: the request is wrong (a parameter, an unknown id). */
export class InvalidRequestError extends PayGateError {}
/** 401: no key, or a key that is malformed, unknown or revoked. */
export class AuthenticationError extends PayGateError {}
/** 403: a restricted key without the permission this call needs (or managing keys, which takes a secret key). */
export class PermissionError extends PayGateError {}
/** 400 or 409: an Idempotency-Key reused with other parameters, or still in use. */
export class IdempotencyError extends PayGateError {}
/** 429: too many requests. */
export class RateLimitError extends PayGateError {}
/** 5xx: a failure on PayGate's side. */
export class APIError extends PayGateError {}
/** The API could not be reached (after the retries). */
export class APIConnectionError extends PayGateError {}

const ERRORS = {
  invalid_request_error: InvalidRequestError,
  authentication_error: AuthenticationError,
  permission_error: PermissionError,
  idempotency_error: IdempotencyError,
  rate_limit_error: RateLimitError,
  api_error: APIError
}

// ------------------------------------------------------------------ encoding

/** Query parameters in the API's bracket form: `created[gte]=…`, `types[]=…`. */
function encodeQuery (params, prefix, out = new URLSearchParams()) {
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined || v === null) continue
    const key = prefix ? `${prefix}[${k}]` : k
    if (Array.isArray(v)) {
      for (const item of v) out.append(`${key}[]`, String(item))
    } else if (v instanceof Date) {
      out.append(key, v.toISOString())
    } else if (typeof v === 'object') {
      encodeQuery(v, key, out)
    } else {
      out.append(key, String(v))
    }
  }
  return out
}

/** A new idempotency key: Web Crypto where the platform has it globally (browsers, Node.js 19+). */
let randomUUID = () => globalThis.crypto.randomUUID()
/** For the Node.js entry: Node.js 18 has `randomUUID` only in `node:crypto`. */
export function _useRandomUUID (fn) { randomUUID = fn }

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ------------------------------------------------------------------ lists

/** A list page that is also an async iterator over every item, page after page. */
function listResult (client, path, params) {
  const first = client._request('GET', path, { query: params })
  const iterate = async function * () {
    let page = await first
    const backward = params && params.ending_before !== undefined
    for (;;) {
      for (const item of page.data) yield item
      if (!page.has_more || page.data.length === 0) return
      const next = { ...params }
      if (backward) {
        next.ending_before = page.data[0].id
      } else {
        delete next.ending_before
        next.starting_after = page.data[page.data.length - 1].id
      }
      page = await client._request('GET', path, { query: next })
    }
  }
  // Awaiting it gives the first page; `for await` over it, or over that page, walks every page.
  const withIterator = first.then((page) => Object.defineProperty(page, Symbol.asyncIterator, { value: iterate }))
  return Object.assign(withIterator, { [Symbol.asyncIterator]: iterate })
}

// ------------------------------------------------------------------ the client

export class PayGate {
  /**
   * @param {string} apiKey `sk_test_…` or `sk_live_…`
   * @param {object} [options]
   * @param {string} [options.baseUrl] default {@link DEFAULT_BASE_URL}
   * @param {number} [options.maxRetries] network errors, 429 and 5xx; default 2
   * @param {number} [options.timeout] milliseconds per request; default 30000
   * @param {boolean} [options.autoIdempotencyKey] give every POST a key so it can be retried; default true
   */
  constructor (apiKey, options = {}) {
    if (typeof apiKey !== 'string' || !apiKey) throw new TypeError('PayGate: an API key (sk_test_… or sk_live_…) is required')
    this._apiKey = apiKey
    this.baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '')
    this.maxRetries = options.maxRetries ?? 2
    this.timeout = options.timeout ?? 30000
    this.autoIdempotencyKey = options.autoIdempotencyKey ?? true
    const endpoints = new WebhookEndpoints(this)
    this.events = new Events(this)
    this.webhooks = { endpoints }
    this.webhookEndpoints = endpoints
    this.apiKeys = new ApiKeys(this)
  }

  async _request (method, path, { query, body, idempotencyKey } = {}) {
    const qs = query ? encodeQuery(query).toString() : ''
    const url = `${this.baseUrl}${path}${qs ? `?${qs}` : ''}`
    const headers = { authorization: `Bearer ${this._apiKey}`, 'user-agent': `paygate-node/${VERSION}`, accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const key = idempotencyKey ?? (method === 'POST' && this.autoIdempotencyKey ? randomUUID() : undefined)
    if (key !== undefined) headers['idempotency-key'] = key
    // A POST without a key is not retried: it might have happened.
    const retries = method === 'POST' && key === undefined ? 0 : this.maxRetries
    for (let attempt = 0; ; attempt++) {
      let res
      try {
        res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.timeout) })
      } catch (err) {
        if (attempt < retries) { await sleep(backoff(attempt)); continue }
        throw new APIConnectionError(`Could not reach PayGate (${url}): ${err.cause?.message ?? err.message}`, { raw: err })
      }
      if ((res.status === 429 || res.status >= 500) && attempt < retries) {
        const after = Number(res.headers.get('retry-after'))
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after, 60) * 1000 : backoff(attempt))
        continue
      }
      const requestId = res.headers.get('request-id')
      const text = await res.text()
      let json
      try { json = text ? JSON.parse(text) : {} } catch { json = { error: { type: 'api_error', message: text } } }
      if (res.ok) return json
      const e = json.error ?? {}
      const Class = ERRORS[e.type] ?? (res.status >= 500 ? APIError : PayGateError)
      throw new Class(e.message ?? `HTTP ${res.status}`, { type: e.type, statusCode: res.status, code: e.code, param: e.param, requestId, raw: json })
    }
  }
}

/** 0.5 s, 1 s, 2 s … (at most 8 s), with jitter. */
function backoff (attempt) {
  const base = Math.min(500 * 2 ** attempt, 8000)
  return base / 2 + Math.random() * base / 2
}

const id = (value, what) => {
  if (typeof value !== 'string' || !value) throw new TypeError(`PayGate: ${what} id is required`)
  return encodeURIComponent(value)
}

class Events {
  constructor (client) { this._client = client }
  /** GET /v1/events/{id} */
  retrieve (eventId) { return this._client._request('GET', `/v1/events/${id(eventId, 'an event')}`) }
  /** GET /v1/events: the first page when awaited; every event when iterated with `for await`. */
  list (params = {}) { return listResult(this._client, '/v1/events', params) }
  /** GET /v1/events/{id}/deliveries: the event's delivery attempts, oldest first; the first page when awaited, every attempt when iterated. */
  deliveries (eventId, params = {}) { return listResult(this._client, `/v1/events/${id(eventId, 'an event')}/deliveries`, params) }
}

class WebhookEndpoints {
  constructor (client) { this._client = client }
  /** POST /v1/webhook_endpoints: `{url, events | enabled_events, description}`; the answer has the secret. */
  create (params, options = {}) { return this._client._request('POST', '/v1/webhook_endpoints', { body: params, idempotencyKey: options.idempotencyKey }) }
  retrieve (endpointId) { return this._client._request('GET', `/v1/webhook_endpoints/${id(endpointId, 'an endpoint')}`) }
  update (endpointId, params, options = {}) { return this._client._request('POST', `/v1/webhook_endpoints/${id(endpointId, 'an endpoint')}`, { body: params, idempotencyKey: options.idempotencyKey }) }
  list (params = {}) { return listResult(this._client, '/v1/webhook_endpoints', params) }
  del (endpointId) { return this._client._request('DELETE', `/v1/webhook_endpoints/${id(endpointId, 'an endpoint')}`) }
  rotateSecret (endpointId, options = {}) { return this._client._request('POST', `/v1/webhook_endpoints/${id(endpointId, 'an endpoint')}/rotate_secret`, { body: {}, idempotencyKey: options.idempotencyKey }) }
  /** Deliver one event to this endpoint again: `{event: 'evt_…'}`. */
  resend (endpointId, params, options = {}) { return this._client._request('POST', `/v1/webhook_endpoints/${id(endpointId, 'an endpoint')}/resend`, { body: params, idempotencyKey: options.idempotencyKey }) }
  /** The endpoint's health over a window: `{since, until, interval: 'hour' | 'day'}` (default the last 24 h). */
  stats (endpointId, params = {}) {
    const time = (v) => (v instanceof Date ? Math.floor(v.getTime() / 1000) : v)
    return this._client._request('GET', `/v1/webhook_endpoints/${id(endpointId, 'an endpoint')}/stats`, { query: { ...params, since: time(params.since), until: time(params.until) } })
  }

  /** Re-queue every finally failed delivery since a time: `{since: unix seconds | ISO string}`. */
  recover (endpointId, params, options = {}) {
    const since = params?.since instanceof Date ? params.since.toISOString() : params?.since
    return this._client._request('POST', `/v1/webhook_endpoints/${id(endpointId, 'an endpoint')}/recover`, { body: { ...params, since }, idempotencyKey: options.idempotencyKey })
  }
}

class ApiKeys {
  constructor (client) { this._client = client }
  /** GET /v1/api_keys: the keys that work, newest first (never the keys themselves); the first page when awaited, every key when iterated. Secret keys only. */
  list (params = {}) { return listResult(this._client, '/v1/api_keys', params) }
  /** POST /v1/api_keys: a restricted key, `{name, permissions: {events: 'none' | 'read', webhook_endpoints: 'none' | 'read' | 'write'}}`; the answer's `secret` is the key, shown once. */
  create (params = {}, options = {}) { return this._client._request('POST', '/v1/api_keys', { body: params, idempotencyKey: options.idempotencyKey }) }
  /** POST /v1/api_keys/{id}/roll: a new key (its `secret` shown once); the old one works `expires_in` more seconds (0, the default, to 604800). */
  roll (keyId, params = {}, options = {}) { return this._client._request('POST', `/v1/api_keys/${id(keyId, 'an API key')}/roll`, { body: params, idempotencyKey: options.idempotencyKey }) }
  /** POST /v1/api_keys/{id}/revoke: a restricted key, or a rolled secret key, stops working now. */
  revoke (keyId, options = {}) { return this._client._request('POST', `/v1/api_keys/${id(keyId, 'an API key')}/revoke`, { body: {}, idempotencyKey: options.idempotencyKey }) }
}
