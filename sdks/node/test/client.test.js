// The client beyond the reference: auto-pagination, errors, retries and idempotency, endpoints.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PayGate, InvalidRequestError, AuthenticationError, PermissionError, APIConnectionError, PayGateError, DEFAULT_BASE_URL } from '@paygate/node'
import { BASE, newAccount, trigger } from './helpers.js'

const account = newAccount()
const paygate = new PayGate(account.test_key, { baseUrl: BASE })

test('auto-pagination walks every page, both ways', async () => {
  const published = trigger(account.test_key, 'customer.updated', 260)
  const ids = published.map((e) => e.id)
  const forward = []
  for await (const event of paygate.events.list({ type: 'customer.updated', limit: 100 })) forward.push(event.id)
  assert.deepEqual(forward, [...ids].reverse(), 'all 260, newest first, each once')
  // From the oldest event towards the newest (ending_before), pages of 100.
  const backward = []
  for await (const event of paygate.events.list({ type: 'customer.updated', limit: 100, ending_before: ids[0] })) backward.push(event.id)
  assert.equal(backward.length, 259)
  assert.deepEqual(new Set(backward), new Set(ids.slice(1)))
  // The awaited page iterates too.
  const page = await paygate.events.list({ type: 'customer.updated', limit: 50 })
  assert.equal(page.data.length, 50)
  let n = 0
  for await (const _ of page) n++ // eslint-disable-line no-unused-vars
  assert.equal(n, 260)
})

test('errors have one class per type, with status, code, param and request id', async () => {
  await assert.rejects(paygate.events.list({ limit: 1000 }), (e) => {
    assert.ok(e instanceof InvalidRequestError && e instanceof PayGateError)
    assert.equal(e.statusCode, 400)
    assert.equal(e.param, 'limit')
    assert.match(e.requestId, /^req_/)
    return true
  })
  await assert.rejects(new PayGate('sk_test_doesNotExist0000000000000', { baseUrl: BASE }).events.list(), (e) => {
    assert.ok(e instanceof AuthenticationError)
    assert.equal(e.statusCode, 401)
    assert.equal(e.code, 'api_key_invalid')
    return true
  })
  await assert.rejects(paygate.events.retrieve('evt_01M86Q64X5F9SJQX46N8MH7WTH'), (e) => {
    assert.ok(e instanceof InvalidRequestError)
    assert.equal(e.statusCode, 404)
    assert.equal(e.code, 'resource_missing')
    return true
  })
  const unreachable = new PayGate(account.test_key, { baseUrl: 'http://127.0.0.1:9', maxRetries: 1 })
  await assert.rejects(unreachable.events.list(), APIConnectionError)
  assert.equal(new PayGate('sk_test_x').baseUrl, DEFAULT_BASE_URL)
})

test('POSTs carry an idempotency key, so the same key returns the same object', async () => {
  const params = { url: 'http://127.0.0.1:9999/hooks', enabled_events: ['*'] }
  const a = await paygate.webhooks.endpoints.create(params, { idempotencyKey: 'node-sdk-test-1' })
  const b = await paygate.webhooks.endpoints.create(params, { idempotencyKey: 'node-sdk-test-1' })
  assert.equal(a.id, b.id)
  const rotated = await paygate.webhooks.endpoints.rotateSecret(a.id)
  assert.notEqual(rotated.secret, a.secret)
  const updated = await paygate.webhooks.endpoints.update(a.id, { description: 'orders', events: ['payment.*'], rate_limit: 25 })
  assert.deepEqual(updated.enabled_events, ['payment.*'])
  assert.equal(updated.rate_limit, 25)
  assert.deepEqual([updated.health.state, updated.health.consecutive_failures], ['closed', 0])
  assert.equal((await paygate.webhooks.endpoints.update(a.id, { rate_limit: null })).rate_limit, null)
  assert.equal((await paygate.webhooks.endpoints.retrieve(a.id)).description, 'orders')
  const listed = await paygate.webhooks.endpoints.list()
  assert.ok(listed.data.some((e) => e.id === a.id))
  const [event] = trigger(account.test_key, 'payment.created')
  const resent = await paygate.webhooks.endpoints.resend(a.id, { event: event.id })
  assert.equal(resent.status, 'pending')
  const recovered = await paygate.webhooks.endpoints.recover(a.id, { since: new Date(Date.now() - 3600e3) })
  assert.equal(recovered.object, 'webhook_recovery')
  const stats = await paygate.webhooks.endpoints.stats(a.id, { since: new Date(Date.now() - 7 * 86400e3) })
  assert.deepEqual([stats.object, stats.interval, stats.endpoint, stats.has_more], ['webhook_endpoint_stats', 'day', a.id, false])
  assert.deepEqual(await paygate.webhooks.endpoints.del(a.id), { id: a.id, object: 'webhook_endpoint', deleted: true })
})

test('API keys: a restricted key is held to its permissions, and a rolled key stops', async () => {
  const own = newAccount()
  const client = new PayGate(own.test_key, { baseUrl: BASE })
  const keys = await client.apiKeys.list()
  assert.deepEqual(keys.data.map((k) => k.type), ['secret'])
  const restricted = await client.apiKeys.create({ name: 'reports', permissions: { events: 'read' } })
  assert.match(restricted.secret, /^rk_test_/)
  assert.deepEqual(restricted.permissions, { events: 'read', webhook_endpoints: 'none' })
  const reports = new PayGate(restricted.secret, { baseUrl: BASE })
  assert.equal((await reports.events.list({ limit: 1 })).object, 'list')
  await assert.rejects(reports.webhooks.endpoints.list(), (e) => {
    assert.ok(e instanceof PermissionError && e instanceof PayGateError)
    assert.deepEqual([e.statusCode, e.type, e.code], [403, 'permission_error', 'insufficient_permissions'])
    return true
  })
  await assert.rejects(reports.apiKeys.list(), PermissionError)
  const all = []
  for await (const k of client.apiKeys.list({ limit: 1 })) all.push(k.id)
  assert.deepEqual(all, [restricted.id, keys.data[0].id], 'newest first, every page')
  // Roll the secret key making the calls: the old one ends now, the new one works.
  const rolled = await client.apiKeys.roll(keys.data[0].id, { expires_in: 0 })
  assert.match(rolled.secret, /^sk_test_/)
  await assert.rejects(client.apiKeys.list(), (e) => e instanceof AuthenticationError && e.code === 'api_key_expired')
  const renewed = new PayGate(rolled.secret, { baseUrl: BASE })
  const revoked = await renewed.apiKeys.revoke(restricted.id)
  assert.equal(revoked.id, restricted.id)
  await assert.rejects(reports.events.list(), AuthenticationError)
})
