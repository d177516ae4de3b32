// The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against a real
// `paygate dev` (started by scripts/dashboard-tests.sh): sign in, the events list and its filters,
// an event's attempts from a real failing-then-succeeding endpoint and Resend, creating and disabling
// an endpoint, the health charts, API keys (create, revoke, roll the signed-in key and sign in with
// the new one), and merchant data rendered as text. Screenshots of every page,
// at 1280×800 and 390×844, go to target/dashboard/screenshots/. No timing assertions: every wait is
// for a condition, with a generous bound.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import http from 'node:http'
import path from 'node:path'
import { chromium } from 'playwright-core'
import { PayGate, Webhook } from '@paygate/node'

const BASE = process.env.PAYGATE_API_BASE
const BIN = process.env.PAYGATE_BIN
if (!BASE || !BIN) throw new Error('Run these tests through `make test` (scripts/dashboard-tests.sh sets PAYGATE_API_BASE and PAYGATE_BIN).')
const SHOTS = process.env.PAYGATE_SCREENSHOTS ?? path.resolve(import.meta.dirname, '../../../target/dashboard/screenshots')
const WAIT = 60_000
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } }
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

const account = JSON.parse(execFileSync(BIN, ['accounts', 'create']).toString())
const key = account.test_key
const api = new PayGate(key, { baseUrl: BASE })
const trigger = (type, ...set) =>
  JSON.parse(execFileSync(BIN, ['trigger', type, '--api-key', key, ...set.flatMap((s) => ['--set', s])]).toString().trim().split('\n')[0])

async function eventually (check, what) {
  for (let i = 0; i < 600; i++) {
    const v = await check()
    if (v) return v
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A webhook receiver that verifies every signature and answers 500 to the first delivery, 200 after. */
function flakyReceiver () {
  const received = []
  let secret = null
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      let verified = false
      try { Webhook.constructEvent(Buffer.concat(chunks), req.headers['x-paygate-signature'], secret); verified = true } catch {}
      received.push({ verified })
      res.statusCode = received.length === 1 ? 500 : 200
      res.end(received.length === 1 ? 'temporarily broken' : 'ok')
    })
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}/webhooks`,
    received,
    setSecret: (s) => { secret = s },
    close: () => server.close()
  })))
}

let browser, page, receiver, flaky
const problems = [] // console errors and page errors (a CSP violation is one)

before(async () => {
  mkdirSync(SHOTS, { recursive: true })
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    // As root in a container, without the sandbox; no background traffic to the closed network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  const context = await browser.newContext({ viewport: SIZES.desktop })
  await context.grantPermissions(['clipboard-read', 'clipboard-write'])
  page = await context.newPage()
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()) })
  page.on('pageerror', (e) => problems.push(String(e)))
  receiver = await flakyReceiver()
})

after(async () => {
  await browser?.close()
  receiver?.close()
})

/** Screenshots of the current page at both sizes: NAME-desktop.png and NAME-phone.png. */
async function shoot (name) {
  for (const [label, size] of Object.entries(SIZES)) {
    await page.setViewportSize(size)
    await page.screenshot({ path: path.join(SHOTS, `${name}-${label}.png`), fullPage: true })
  }
  await page.setViewportSize(SIZES.desktop)
}

const visit = (hash = '') => page.goto(`${BASE}/dashboard${hash}`)

test('signs in with a pasted key and shows the mode', async () => {
  await visit()
  await page.getByLabel('Secret API key').fill('sk_test_notarealkey')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor({ timeout: WAIT })
  await shoot('sign-in')
  assert.deepEqual(await accessibilityViolations(), [], 'the sign-in page')
  // By keyboard this time: the key, then Enter.
  await page.getByLabel('Secret API key').fill(key)
  await page.keyboard.press('Enter')
  await page.getByText('Test mode').waitFor({ timeout: WAIT })
  assert.equal(await page.evaluate(() => sessionStorage.getItem('paygate.dashboard.key')), key)
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage')
})

test('the events list shows triggered events, and a family filter narrows it', async () => {
  const payments = [trigger('payment.succeeded'), trigger('payment.failed')]
  const customer = trigger('customer.created')
  await visit('#/events')
  for (const e of [...payments, customer]) await page.getByRole('link', { name: e.id }).waitFor({ timeout: WAIT })
  await page.locator('tbody').getByText('Payment completed successfully').first().waitFor()
  await shoot('events')
  await page.getByLabel('Type').selectOption('customer.*')
  await page.getByRole('button', { name: 'Apply' }).click()
  await page.getByRole('link', { name: payments[0].id }).waitFor({ state: 'detached', timeout: WAIT })
  await page.getByRole('link', { name: customer.id }).waitFor({ timeout: WAIT })
  assert.equal(await page.getByRole('link', { name: payments[1].id }).count(), 0)
  assert.ok((await page.locator('tbody tr').allTextContents()).every((row) => row.includes('customer.')))
  await shoot('events-filtered')
})

test('pages with cursors both ways, and a created range narrows the list', async () => {
  const before = Math.floor(Date.now() / 1000) - 2
  const many = JSON.parse(`[${execFileSync(BIN, ['trigger', 'payout.processing', '--api-key', key, '--count', '30']).toString().trim().split('\n').join(',')}]`)
  const newest = many[many.length - 1]
  const oldest = many[0]
  await visit('#/events?type=payout.processing')
  const rows = page.locator('tbody tr')
  await page.getByRole('link', { name: newest.id }).waitFor({ timeout: WAIT })
  assert.equal(await rows.count(), 25)
  await page.getByRole('button', { name: 'Older →' }).click()
  await page.getByRole('link', { name: oldest.id }).waitFor({ timeout: WAIT })
  assert.equal(await rows.count(), 5)
  assert.ok(await page.getByRole('button', { name: 'Older →' }).isDisabled(), 'nothing older')
  await page.getByRole('button', { name: '← Newer' }).click()
  await page.getByRole('link', { name: newest.id }).waitFor({ timeout: WAIT })
  assert.equal(await rows.count(), 25)
  // Up to a second before the 30 were made: none of them.
  await visit(`#/events?type=payout.processing&to=${before}`)
  await page.getByText('No events match.').waitFor({ timeout: WAIT })
  await visit(`#/events?type=payout.processing&from=${before}`)
  await page.getByRole('link', { name: newest.id }).waitFor({ timeout: WAIT })
})

test('an event shows the attempts of a failing-then-succeeding endpoint, and Resend adds one', async () => {
  const created = await api.webhooks.endpoints.create({ url: receiver.url, enabled_events: ['payment.failed'], description: 'flaky receiver' })
  receiver.setSecret(created.secret)
  flaky = created
  await new Promise((resolve) => setTimeout(resolve, 5)) // endpoints get the events made after them
  const event = trigger('payment.failed')
  await eventually(async () => (await api.events.deliveries(event.id)).data.some((a) => a.status === 'succeeded'), 'the retry to succeed')
  await visit(`#/events/${event.id}`)
  const timeline = page.locator('.timeline li')
  await eventually(async () => (await timeline.count()) === 2, 'two attempts on the page')
  const texts = await timeline.allTextContents()
  assert.match(texts[0], /Attempt 1.*failed.*HTTP 500/)
  assert.match(texts[1], /Attempt 2.*succeeded.*HTTP 200/)
  assert.ok(receiver.received.every((r) => r.verified), 'every delivery verified')
  await page.getByText('pending_webhooks').first().waitFor()
  await shoot('event-detail')
  await page.getByRole('button', { name: 'Resend to endpoint' }).click()
  await eventually(async () => (await timeline.count()) === 3, 'the resent attempt on the page')
  assert.match((await timeline.allTextContents())[2], /succeeded.*HTTP 200/)
  assert.equal(receiver.received.length, 3)
})

test('creates an endpoint with a rate limit, shows its secret once and its breaker, and disables it', async () => {
  await visit('#/endpoints')
  await page.getByRole('button', { name: 'Add an endpoint' }).click()
  await page.getByLabel('Endpoint URL').fill('http://127.0.0.1:9999/new-endpoint')
  await page.getByLabel('Description').fill('<b>not bold</b>')
  await page.getByLabel('payment.*').check()
  await page.getByLabel('refund.created').check()
  await page.getByLabel('Rate limit').fill('50')
  await page.getByRole('button', { name: 'Add endpoint' }).click()
  const secret = page.locator('.secret-value')
  await secret.waitFor({ timeout: WAIT })
  const createdSecret = await secret.textContent()
  assert.match(createdSecret, /^whsec_/)
  await shoot('endpoint-created')
  await page.getByRole('button', { name: 'Done' }).click()
  assert.equal(await page.locator('.secret-value').count(), 0)
  const link = page.getByRole('link', { name: 'http://127.0.0.1:9999/new-endpoint' })
  await link.waitFor({ timeout: WAIT })
  assert.equal(await page.locator('b', { hasText: 'not bold' }).count(), 0, 'the description is text, not markup')
  await page.getByText('<b>not bold</b>').waitFor()
  await page.reload()
  await link.waitFor({ timeout: WAIT })
  assert.doesNotMatch(await page.content(), /whsec_/, 'the secret is not shown again')
  await shoot('endpoints')
  await link.click()
  const events = page.locator('dd', { hasText: 'refund.created' })
  await events.waitFor({ timeout: WAIT })
  assert.match(await events.textContent(), /payment\.\*/)
  await page.locator('dd', { hasText: '50 per second' }).waitFor()
  assert.equal(await page.getByTestId('breaker').textContent(), 'closed')
  await page.getByRole('button', { name: 'Disable' }).click()
  await page.getByRole('button', { name: 'Enable' }).waitFor({ timeout: WAIT })
  await page.locator('.chip-disabled').waitFor()
  const listed = await api.webhooks.endpoints.list()
  assert.equal(listed.data.find((e) => e.url === 'http://127.0.0.1:9999/new-endpoint').status, 'disabled')
  // Rotating asks once more, then shows the new secret once.
  await page.getByRole('button', { name: 'Rotate secret' }).click()
  await page.getByRole('button', { name: 'Yes, rotate secret' }).click()
  await secret.waitFor({ timeout: WAIT })
  assert.match(await secret.textContent(), /^whsec_/)
  assert.notEqual(await secret.textContent(), createdSecret)
  await shoot('endpoint-rotated')
  await page.getByRole('button', { name: 'Done' }).click()
  assert.equal(await secret.count(), 0)
})

test('the health charts render with data points from real deliveries', async () => {
  assert.ok(flaky, 'the flaky endpoint of the attempts test')
  await visit(`#/endpoints/${flaky.id}`)
  await page.getByTestId('attempts').filter({ hasText: '3' }).waitFor({ timeout: WAIT })
  const charts = page.locator('figure.chart')
  await eventually(async () => (await charts.count()) === 2, 'two charts')
  for (const chart of await charts.all()) {
    assert.ok(Number(await chart.getAttribute('data-points')) > 0, 'the chart has points')
    await chart.locator('canvas').waitFor()
  }
  await page.getByText('Recent failures').waitFor()
  await page.locator('td', { hasText: 'HTTP 500' }).first().waitFor()
  await shoot('endpoint-health')
  // Nothing finally failed (the retry succeeded): recover queues none.
  await page.getByRole('button', { name: 'Recover' }).click()
  await page.getByText('Queued 0 deliveries again.').waitFor({ timeout: WAIT })
  await page.getByRole('button', { name: 'Last 7 days' }).click()
  await page.getByRole('button', { name: 'Last 7 days', pressed: true }).waitFor()
  await page.getByTestId('attempts').filter({ hasText: '3' }).waitFor({ timeout: WAIT })
})

test('a payload containing <script> renders as text', async () => {
  const attack = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>"
  const event = trigger('payment.succeeded', `description=${attack}`)
  await visit(`#/events/${event.id}`)
  const json = page.locator('.json pre')
  await json.waitFor({ timeout: WAIT })
  assert.ok((await json.textContent()).includes(attack), 'the payload shows as written')
  assert.equal(await page.evaluate(() => window.__pwned), undefined)
  assert.equal(await page.locator('#app script, #app img').count(), 0)
  await shoot('event-with-script')
})

test('API keys: a restricted key is made and revoked, and the signed-in key is rolled and replaced', async () => {
  // An account of its own: rolling its key must not end the other tests' key.
  const own = JSON.parse(execFileSync(BIN, ['accounts', 'create']).toString())
  const hint = (k) => `${k.slice(0, 8)}…${k.slice(-4)}`
  const signInAs = async (k) => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByLabel('Secret API key').fill(k)
    await page.getByRole('button', { name: 'Sign in' }).click()
  }
  await signInAs(own.test_key)
  await page.getByText('Test mode').waitFor({ timeout: WAIT })
  await visit('#/keys')
  const mine = page.locator('tr', { hasText: "this session's key" })
  await mine.getByText(hint(own.test_key)).waitFor({ timeout: WAIT })

  await page.getByRole('button', { name: 'Create a restricted key' }).click()
  await page.getByLabel('Name').fill('<i>Reports</i>')
  await page.getByLabel('Webhook endpoints').selectOption('read')
  await page.getByRole('button', { name: 'Create key' }).click()
  const secret = page.locator('.secret-value')
  await secret.waitFor({ timeout: WAIT })
  const rk = await secret.textContent()
  assert.match(rk, /^rk_test_/)
  await shoot('keys-created')
  await page.getByRole('button', { name: 'Done' }).click()
  assert.equal(await secret.count(), 0)
  const restricted = new PayGate(rk, { baseUrl: BASE })
  assert.equal((await restricted.events.list({ limit: 1 })).object, 'list')
  await assert.rejects(restricted.webhooks.endpoints.create({ url: 'http://127.0.0.1:9999/x', enabled_events: ['*'] }), (e) => e.statusCode === 403)
  const row = page.locator('tr', { hasText: hint(rk) })
  await row.getByText('events: read, webhook_endpoints: read').waitFor({ timeout: WAIT })
  assert.equal(await row.locator('i').count(), 0, 'the name is text, not markup')
  await page.reload()
  await row.waitFor({ timeout: WAIT })
  assert.ok(!(await page.content()).includes(rk), 'the key is not shown again')
  await shoot('keys')

  // Revoke asks once more; the key stops at once.
  await row.getByRole('button', { name: 'Revoke' }).click()
  await row.getByRole('button', { name: 'Yes, revoke' }).click()
  await row.waitFor({ state: 'detached', timeout: WAIT })
  await assert.rejects(restricted.events.list(), (e) => e.statusCode === 401)

  // Roll the key this tab signed in with, ending it now: the new key is shown once and signs in.
  await mine.getByLabel(/stops working/).selectOption('0')
  await mine.getByRole('button', { name: 'Roll' }).click()
  await mine.getByRole('button', { name: 'Yes, roll' }).click()
  await secret.waitFor({ timeout: WAIT })
  const renewed = await secret.textContent()
  assert.match(renewed, /^sk_test_/)
  assert.notEqual(renewed, own.test_key)
  await page.getByRole('status').filter({ hasText: 'no longer works' }).waitFor()
  await shoot('keys-rolled')
  await assert.rejects(new PayGate(own.test_key, { baseUrl: BASE }).events.list(), (e) => e.statusCode === 401)
  await page.getByRole('button', { name: 'Sign in with the new key' }).click()
  await mine.getByText(hint(renewed)).waitFor({ timeout: WAIT })
  assert.equal(await page.evaluate(() => sessionStorage.getItem('paygate.dashboard.key')), renewed)
  // The old key no longer signs in; the new one does.
  await signInAs(own.test_key)
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor({ timeout: WAIT })
  await page.getByLabel('Secret API key').fill(renewed)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByText('Test mode').waitFor({ timeout: WAIT })
  // Back to the other tests' account.
  await signInAs(key)
  await page.getByText('Test mode').waitFor({ timeout: WAIT })
})

/** axe-core's WCAG 2.1 A and AA checks on the current page: its violations, one line each. */
async function accessibilityViolations () {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE)
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }))
  assert.ok(result.passes.length > 10, `axe ran its rules (${result.passes.length} passed)`)
  return result.violations.map((v) => `${v.id} (${v.impact}) ×${v.nodes.length}: ${v.help} [${v.nodes[0]?.target}]`)
}

// WCAG 1.4.10 (reflow) reads content at 320 CSS pixels wide: there the tables must scroll sideways,
// so the checks below always see scrolling regions, whatever the fonts of the machine.
const REFLOW = { width: 320, height: 640 }

test('every page passes axe-core\'s WCAG 2.1 A and AA checks, at both sizes and at 320 px', async () => {
  assert.ok(flaky, 'the flaky endpoint of the attempts test')
  const deliveries = await api.events.list({ type: 'payment.failed', limit: 1 })
  const pages = ['#/events', `#/events/${deliveries.data[0].id}`, '#/endpoints', `#/endpoints/${flaky.id}`, '#/keys']
  for (const [label, size] of Object.entries({ ...SIZES, reflow: REFLOW })) {
    await page.setViewportSize(size)
    for (const hash of pages) {
      await visit(hash)
      await page.locator('main h1').waitFor({ timeout: WAIT })
      await page.waitForLoadState('networkidle')
      assert.deepEqual(await accessibilityViolations(), [], `${hash} at ${label}`)
    }
  }
  await visit('#/events')
  await page.locator('main table').waitFor({ timeout: WAIT })
  const scrolls = await page.locator('main table').evaluate((t) => t.parentElement.scrollWidth > t.parentElement.clientWidth)
  assert.ok(scrolls, 'at 320 px the events table scrolls sideways, so the checks above covered a scrolling region')
  await page.setViewportSize(SIZES.desktop)
})

test('nothing broke the content security policy or threw', () => {
  assert.deepEqual(problems.filter((p) => !p.includes('401')), [])
})
