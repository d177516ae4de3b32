// Signature verification: both schemes, several v1 signatures, and every way to fail.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { Webhook, WebhookSignatureError } from '@paygate/node'

const secret = 'whsec_' + crypto.randomBytes(32).toString('base64')
const body = JSON.stringify({ id: 'evt_01M86Q64X5F9SJQX46N8MH7WTH', object: 'event', type: 'payment.succeeded', data: { object: { id: 'pay_1', object: 'payment' } } })
const now = () => Math.floor(Date.now() / 1000)
const v1 = (s, t, payload) => crypto.createHmac('sha256', s).update(`${t}.${payload}`).digest('hex')

test('constructEvent accepts a Buffer or a string, and any of several v1 signatures', () => {
  const t = now()
  const header = `t=${t},v1=${v1('whsec_old', t, body)},v1=${v1(secret, t, body)}`
  assert.equal(Webhook.constructEvent(Buffer.from(body), header, secret).data.object.id, 'pay_1')
  assert.equal(Webhook.constructEvent(body, header, secret).type, 'payment.succeeded')
})

test('tampered, expired, wrong-secret and malformed signatures are refused', () => {
  const t = now()
  const header = `t=${t},v1=${v1(secret, t, body)}`
  const refused = (fn) => assert.throws(fn, WebhookSignatureError)
  refused(() => Webhook.constructEvent(body.replace('pay_1', 'pay_2'), header, secret))
  const old = now() - 301
  refused(() => Webhook.constructEvent(body, `t=${old},v1=${v1(secret, old, body)}`, secret))
  refused(() => Webhook.constructEvent(body, header, 'whsec_' + crypto.randomBytes(32).toString('base64')))
  refused(() => Webhook.constructEvent(body, undefined, secret))
  refused(() => Webhook.constructEvent(body, `v1=${v1(secret, t, body)}`, secret))
  refused(() => Webhook.constructEvent(JSON.parse(body), header, secret))
  assert.ok(Webhook.constructEvent(body, `t=${old},v1=${v1(secret, old, body)}`, secret, 0), 'tolerance 0 turns the time check off')
})

test('verifyStandard checks the Standard Webhooks headers', () => {
  const t = String(now())
  const id = 'evt_01M86Q64X5F9SJQX46N8MH7WTH'
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
  const sig = crypto.createHmac('sha256', key).update(`${id}.${t}.${body}`).digest('base64')
  const headers = { 'webhook-id': id, 'webhook-timestamp': t, 'webhook-signature': `v1,${sig}` }
  assert.equal(Webhook.verifyStandard(body, headers, secret).id, id)
  assert.equal(Webhook.verifyStandard(body, new Headers(headers), secret).id, id)
  assert.throws(() => Webhook.verifyStandard(body + ' ', headers, secret), WebhookSignatureError)
  assert.throws(() => Webhook.verifyStandard(body, { ...headers, 'webhook-id': 'evt_other' }, secret), WebhookSignatureError)
})

test('a missing or empty secret verifies nothing, in both schemes', () => {
  const t = now()
  const id = 'evt_01M86Q64X5F9SJQX46N8MH7WTH'
  // What a forger signs with when the receiver's secret variable is unset.
  for (const key of ['', 'undefined']) {
    const header = `t=${t},v1=${v1(key, t, body)}`
    const std = crypto.createHmac('sha256', Buffer.from(key.replace(/^whsec_/, ''), 'base64')).update(`${id}.${t}.${body}`).digest('base64')
    const headers = { 'webhook-id': id, 'webhook-timestamp': String(t), 'webhook-signature': `v1,${std}` }
    for (const missing of [undefined, null, '']) {
      assert.throws(() => Webhook.constructEvent(body, header, missing), WebhookSignatureError)
    }
    for (const missing of [undefined, null, '', 'whsec_']) {
      assert.throws(() => Webhook.verifyStandard(body, headers, missing), WebhookSignatureError)
    }
  }
})

test('a negative or non-numeric tolerance is refused, and 0 turns the time check off', () => {
  const old = now() - 3600
  const header = `t=${old},v1=${v1(secret, old, body)}`
  assert.ok(Webhook.constructEvent(body, header, secret, 0))
  for (const bad of [-1, -300, NaN, Infinity, '300', null]) {
    assert.throws(() => Webhook.constructEvent(body, header, secret, bad), TypeError)
    assert.throws(() => Webhook.verifyStandard(body, {}, secret, bad), TypeError)
  }
})
