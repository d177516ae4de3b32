// The API as the dashboard uses it: the public API only, through @paygate/node's browser-safe client,
// on the origin that served the page. The key lives in sessionStorage and is only ever sent to that
// API, as `Authorization: Bearer`.
import { PayGate } from '@paygate/node/client'

const KEY = 'paygate.dashboard.key'

/** Where the API is: the page's own origin and stage (`/dev/dashboard` → `/dev`). */
export function apiBase (loc = window.location) {
  return loc.origin + loc.pathname.replace(/\/dashboard\/?$/, '')
}

export const modeOf = (key) => (key?.startsWith('sk_live_') ? 'live' : key?.startsWith('sk_test_') ? 'test' : null)

export function storedKey () {
  return window.sessionStorage.getItem(KEY)
}

export function forgetKey () {
  window.sessionStorage.removeItem(KEY)
}

/** A client for `key`; kept for the session once the API has accepted it. */
export async function signIn (key) {
  const trimmed = key.trim()
  if (!modeOf(trimmed)) throw new Error('An API key starts with sk_test_ or sk_live_.')
  const client = clientFor(trimmed)
  await client.events.list({ limit: 1 }) // a 401 throws here
  window.sessionStorage.setItem(KEY, trimmed)
  return client
}

export function clientFor (key) {
  return new PayGate(key, { baseUrl: apiBase(), maxRetries: 1, timeout: 15000 })
}

/** The 27 event types with the reference's descriptions, grouped by family (served beside the page). */
let types
export function eventTypes () {
  types ??= fetch('dashboard/event-types.json').then((r) => {
    if (!r.ok) throw new Error(`event types: HTTP ${r.status}`)
    return r.json()
  })
  return types
}
