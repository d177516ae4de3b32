// The API reference's JavaScript, verbatim except for the import line, the base URL, ids and URLs
// that must point at this machine. Comments name the reference section of each snippet.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import express from 'express'
import { PayGate, Webhook } from '@paygate/node'
import { BASE, newAccount, trigger, eventually } from './helpers.js'

const account = newAccount()
const paygate = new PayGate(account.test_key, { baseUrl: BASE })
const logged = []
const console = { log: (...a) => logged.push(a), error: (...a) => logged.push(a) }

test('Retrieve an Event', async () => {
  const [published] = trigger(account.test_key, 'payment.succeeded')
  // --- reference (evt_abc123def456 → a real id)
  const event = await paygate.events.retrieve(published.id)
  console.log(event.type) // 'payment.succeeded'
  console.log(event.data.object.id) // 'pay_xyz789'
  // ---
  assert.equal(event.type, 'payment.succeeded')
  assert.equal(event.data.object.id, published.data.object.id)
  assert.match(event.data.object.id, /^pay_/)
})

test('List Events', async () => {
  const published = trigger(account.test_key, 'payment.succeeded', 12)
  // --- reference
  const events = await paygate.events.list({
    type: 'payment.succeeded',
    limit: 10
  })
  for (const event of events.data) {
    console.log(event.id, event.type)
  }
  // ---
  assert.equal(events.object, 'list')
  assert.equal(events.data.length, 10)
  assert.equal(events.has_more, true)
  assert.ok(events.data.every((e) => e.type === 'payment.succeeded'))
  assert.equal(events.data[0].id, published.at(-1).id, 'newest first')
})

test('Retry Events: payment.succeeded events from the last hour', async () => {
  const published = trigger(account.test_key, 'payment.succeeded', 3)
  const handled = []
  const handleEvent = async (event) => { handled.push(event.id) }
  // --- reference
  // Get all payment.succeeded events from the last hour
  const oneHourAgo = new Date(Date.now() - 60 * 60 * 1000)
  const events = await paygate.events.list({
    type: 'payment.succeeded',
    created: { gte: oneHourAgo.toISOString() }
  })
  for (const event of events.data) {
    await handleEvent(event)
  }
  // ---
  for (const e of published) assert.ok(handled.includes(e.id), `${e.id} is from the last hour`)
})

test('Handling Events: the express handler receives real deliveries', async () => {
  const received = { succeeded: [], failed: [], created: [], canceled: [], other: [] }
  const handlePaymentSuccess = async (p) => { received.succeeded.push(p.id) }
  const handlePaymentFailure = async (p) => { received.failed.push(p.id) }
  const handleNewSubscription = async (s) => { received.created.push(s.id) }
  const handleCanceledSubscription = async (s) => { received.canceled.push(s.id) }
  const headers = []

  // --- reference "Use Event Types Effectively" (https://yoursite.com → the handler below, on this machine)
  const app = express()
  const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
  const endpoint = await paygate.webhooks.endpoints.create({
    url: `http://127.0.0.1:${server.address().port}/webhooks`,
    events: [
      'payment.succeeded',
      'payment.failed',
      'subscription.created',
      'subscription.canceled'
    ]
  })
  // ---
  assert.deepEqual([...endpoint.enabled_events].sort(), ['payment.failed', 'payment.succeeded', 'subscription.canceled', 'subscription.created'])

  // --- reference "Handling Events" (whsec_... → the endpoint's secret; the handler is async, since
  // the reference's body awaits, which a non-async function cannot)
  const endpointSecret = endpoint.secret
  app.post('/webhooks', express.raw({ type: 'application/json' }), async (req, res) => {
    headers.push(req.headers)
    const signature = req.headers['x-paygate-signature']
    let event
    try {
      event = Webhook.constructEvent(req.body, signature, endpointSecret)
    } catch (err) {
      console.error('Webhook signature verification failed:', err.message)
      return res.status(400).send('Invalid signature')
    }
    // Handle the event
    switch (event.type) {
      case 'payment.succeeded':
        const payment = event.data.object
        await handlePaymentSuccess(payment)
        break
      case 'payment.failed':
        const failedPayment = event.data.object
        await handlePaymentFailure(failedPayment)
        break
      case 'subscription.created':
        const subscription = event.data.object
        await handleNewSubscription(subscription)
        break
      case 'subscription.canceled':
        const canceledSub = event.data.object
        await handleCanceledSubscription(canceledSub)
        break
      default:
        console.log(`Unhandled event type: ${event.type}`)
    }
    res.json({ received: true })
  })
  // ---
  try {
    const sent = ['payment.succeeded', 'payment.failed', 'subscription.created', 'subscription.canceled', 'refund.created']
      .map((t) => trigger(account.test_key, t)[0])
    await eventually(() => received.succeeded.length && received.failed.length && received.created.length && received.canceled.length, 'four deliveries')
    assert.deepEqual(received.succeeded, [sent[0].data.object.id])
    assert.deepEqual(received.failed, [sent[1].data.object.id])
    assert.deepEqual(received.created, [sent[2].data.object.id])
    assert.deepEqual(received.canceled, [sent[3].data.object.id])
    // The same deliveries verify as Standard Webhooks too.
    const h = headers[0]
    assert.ok(h['webhook-id'] && h['webhook-signature'])
    // Delivered, as the API says.
    const attempts = await eventually(async () => {
      const d = await paygate.events.deliveries(sent[0].id)
      return d.data.some((a) => a.status === 'succeeded') && d
    }, 'the delivery record')
    assert.equal(attempts.data[0].endpoint, endpoint.id)
    const refund = await paygate.events.retrieve(sent[4].id)
    assert.equal(refund.pending_webhooks, 0, 'not subscribed: nothing pending')
  } finally {
    await paygate.webhooks.endpoints.del(endpoint.id)
    server.close()
  }
})
