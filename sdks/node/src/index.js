// @paygate/node: the PayGate Events API client (./client.js, browser-safe) and webhook signature
// verification. No runtime dependencies: Node 18+ `fetch` and `crypto`.

import crypto from 'node:crypto'
import { PayGate, _useRandomUUID } from './client.js'

export {
  VERSION, DEFAULT_BASE_URL, PayGate, PayGateError, InvalidRequestError, AuthenticationError, PermissionError, IdempotencyError,
  RateLimitError, APIError, APIConnectionError
} from './client.js'

_useRandomUUID(() => crypto.randomUUID())

/** Seconds a signature's timestamp may be away from now. */
export const DEFAULT_TOLERANCE = 300

/** A webhook whose signature does not verify. */
export class WebhookSignatureError extends Error {
  constructor (message) {
    super(message)
    this.name = 'WebhookSignatureError'
  }
}

// ------------------------------------------------------------------ webhooks

const toBuffer = (payload) => {
  if (Buffer.isBuffer(payload)) return payload
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8')
  if (payload instanceof Uint8Array) return Buffer.from(payload)
  throw new WebhookSignatureError('The payload must be the raw request body (a Buffer or a string), not parsed JSON; use express.raw({ type: "application/json" })')
}

const equal = (a, b) => a.length === b.length && crypto.timingSafeEqual(a, b)

/** A tolerance is seconds, 0 or more; 0 turns the time check off (as Stripe's). Anything else is a bug of the caller's. */
function checkTolerance (tolerance) {
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) {
    throw new TypeError(`tolerance must be seconds, 0 or more (0 turns the time check off), not ${String(tolerance)}`)
  }
}

function checkTime (t, tolerance) {
  if (tolerance > 0 && Math.abs(Math.floor(Date.now() / 1000) - t) > tolerance) {
    throw new WebhookSignatureError('The signature timestamp is outside the tolerance')
  }
}

export const Webhook = {
  /**
   * Verifies the `x-paygate-signature` header (`t=…,v1=…[,v1=…]`) over the raw body and returns
   * the parsed event. Throws a WebhookSignatureError.
   */
  constructEvent (payload, header, secret, tolerance = DEFAULT_TOLERANCE) {
    checkTolerance(tolerance)
    const body = toBuffer(payload)
    if (typeof header !== 'string' || !header) throw new WebhookSignatureError('No signature header (x-paygate-signature)')
    if (typeof secret !== 'string' || !secret) throw new WebhookSignatureError('No endpoint secret')
    let t = null
    const signatures = []
    for (const part of header.split(',')) {
      const [k, v] = part.trim().split('=', 2)
      if (k === 't' && /^\d+$/.test(v ?? '')) t = Number(v)
      if (k === 'v1' && /^[0-9a-f]{64}$/.test(v ?? '')) signatures.push(Buffer.from(v, 'hex'))
    }
    if (t === null || signatures.length === 0) throw new WebhookSignatureError('Unable to extract a timestamp and v1 signatures from the header')
    const expected = crypto.createHmac('sha256', secret).update(`${t}.`).update(body).digest()
    if (!signatures.some((s) => equal(s, expected))) throw new WebhookSignatureError('No signature matches the expected signature for the payload')
    checkTime(t, tolerance)
    return JSON.parse(body.toString('utf8'))
  },

  /**
   * Verifies the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`)
   * and returns the parsed event. `headers` is a plain object or a Headers. Throws a WebhookSignatureError.
   */
  verifyStandard (payload, headers, secret, tolerance = DEFAULT_TOLERANCE) {
    checkTolerance(tolerance)
    const body = toBuffer(payload)
    const get = (name) => (typeof headers?.get === 'function' ? headers.get(name) : headers?.[name]) ?? ''
    const msgId = get('webhook-id')
    const ts = get('webhook-timestamp')
    const sig = get('webhook-signature')
    if (!msgId || !/^\d+$/.test(ts) || !sig) throw new WebhookSignatureError('Missing Standard Webhooks headers')
    // A missing secret must not become a key (String(undefined) is "undefined", "" an empty key).
    if (typeof secret !== 'string' || !/^(whsec_)?[A-Za-z0-9+/]+={0,2}$/.test(secret)) throw new WebhookSignatureError('No endpoint secret (a whsec_ secret)')
    const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
    if (key.length === 0) throw new WebhookSignatureError('No endpoint secret (a whsec_ secret)')
    const expected = crypto.createHmac('sha256', key).update(`${msgId}.${ts}.`).update(body).digest()
    const ok = sig.split(' ').some((entry) => {
      const [version, value] = entry.split(',', 2)
      return version === 'v1' && value && equal(Buffer.from(value, 'base64'), expected)
    })
    if (!ok) throw new WebhookSignatureError('No signature matches the expected signature for the payload')
    checkTime(Number(ts), tolerance)
    return JSON.parse(body.toString('utf8'))
  }
}

export default PayGate
