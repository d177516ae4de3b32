// Webhook endpoints: the list and the create form, and one endpoint (edit, enable/disable, rotate the
// secret, delete, recover failed deliveries, and its health).
import { useState } from 'preact/hooks'
import { eventTypes } from './api.js'
import { go } from './route.js'
import { Health } from './health.jsx'
import { Confirm, ErrorBox, SecretOnce, Status, TableWrap, Time, useLoad } from './ui.jsx'

/** Checkboxes for `*`, each family (`payment.*`) and each type; a family or `*` covers what it names. */
function EventPicker ({ selected, onChange }) {
  const [catalogue] = useLoad(eventTypes, [])
  const has = (v) => selected.includes(v)
  const toggle = (v, on) => onChange(on ? [...selected.filter((s) => s !== v), v] : selected.filter((s) => s !== v))
  const all = has('*')
  return (
    <fieldset class='picker'>
      <legend>Events to send</legend>
      <label class='toggle'><input type='checkbox' checked={all} onChange={(e) => toggle('*', e.currentTarget.checked)} /> Every event (*)</label>
      {catalogue?.families.map((f) => {
        const family = `${f.family}.*`
        return (
          <fieldset key={f.family} disabled={all}>
            <legend>
              <label class='toggle'><input type='checkbox' checked={all || has(family)} onChange={(e) => toggle(family, e.currentTarget.checked)} /> {family}</label>
            </legend>
            {f.types.map((t) => (
              <label key={t.type} class='toggle' title={t.description}>
                <input type='checkbox' disabled={has(family)} checked={all || has(family) || has(t.type)} onChange={(e) => toggle(t.type, e.currentTarget.checked)} />
                {' '}{t.type} <small class='desc'>{t.description}</small>
              </label>
            ))}
          </fieldset>
        )
      })}
    </fieldset>
  )
}

/** URL, description, events and rate limit: for a new endpoint and for editing one. */
function EndpointForm ({ initial, submitLabel, onSubmit, onCancel }) {
  const [events, setEvents] = useState(initial?.enabled_events ?? [])
  const [error, setError] = useState(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e) => {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    if (events.length === 0) { setError({ message: 'Choose at least one event (or every event).' }); return }
    setBusy(true)
    setError(null)
    try {
      const rate = String(f.get('rate_limit')).trim()
      // Empty: no limit (a new endpoint sends nothing; an edit removes the limit).
      const rateLimit = rate === '' ? (initial ? '' : undefined) : Number(rate)
      await onSubmit({ url: String(f.get('url')).trim(), description: String(f.get('description')), enabled_events: events, rate_limit: rateLimit })
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  return (
    <form class='endpoint-form' onSubmit={submit}>
      <label>Endpoint URL <input name='url' type='url' required defaultValue={initial?.url ?? ''} placeholder='https://example.com/webhooks' /></label>
      <label>Description <input name='description' type='text' maxLength={5000} defaultValue={initial?.description ?? ''} /></label>
      <label>Rate limit (deliveries per second, empty for none) <input name='rate_limit' type='number' min={1} max={10000} step={1} defaultValue={initial?.rate_limit ?? ''} /></label>
      <EventPicker selected={events} onChange={setEvents} />
      <ErrorBox error={error} />
      <button type='submit' disabled={busy}>{submitLabel}</button>
      {onCancel && <button type='button' class='secondary' onClick={onCancel}>Cancel</button>}
    </form>
  )
}

export function EndpointsPage ({ client }) {
  const [list, error, reload] = useLoad(() => client.webhooks.endpoints.list({ limit: 100 }), [])
  const [adding, setAdding] = useState(false)
  const [secret, setSecret] = useState(null)
  const create = async (params) => {
    const created = await client.webhooks.endpoints.create(params)
    setAdding(false)
    setSecret({ secret: created.secret, id: created.id })
    reload()
  }
  return (
    <section aria-labelledby='endpoints-title'>
      <h1 id='endpoints-title'>Webhook endpoints</h1>
      <ErrorBox error={error} />
      {secret && (
        <SecretOnce secret={secret.secret} onDone={() => setSecret(null)} />
      )}
      {adding
        ? <EndpointForm submitLabel='Add endpoint' onSubmit={create} onCancel={() => setAdding(false)} />
        : <button type='button' onClick={() => { setAdding(true); setSecret(null) }}>Add an endpoint</button>}
      <TableWrap label='Webhook endpoints'>
        <table>
          <caption class='visually-hidden'>Webhook endpoints</caption>
          <thead><tr><th scope='col'>URL</th><th scope='col'>Events</th><th scope='col'>Status</th><th scope='col'>Created</th></tr></thead>
          <tbody>
            {list?.data.map((e) => (
              <tr key={e.id}>
                <td><a href={`#/endpoints/${encodeURIComponent(e.id)}`}>{e.url}</a>{e.description && <small class='desc'>{e.description}</small>}</td>
                <td>{e.enabled_events.join(', ')}</td>
                <td><Status status={e.status} /></td>
                <td><Time value={e.created_at} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {list && list.data.length === 0 && <p>No endpoints yet.</p>}
    </section>
  )
}

function Recover ({ client, id }) {
  const [result, setResult] = useState(null)
  const [error, setError] = useState(null)
  const submit = async (e) => {
    e.preventDefault()
    setError(null)
    try {
      const since = new Date(String(new FormData(e.currentTarget).get('since')))
      // At most 100 a call: called again while there are more (and each call re-opened some).
      let queued = 0
      for (let i = 0; i < 1000; i++) {
        const r = await client.webhooks.endpoints.recover(id, { since })
        queued += r.queued
        if (!r.has_more || r.queued === 0) break
      }
      setResult({ queued })
    } catch (err) {
      setError(err)
    }
  }
  const dayAgo = new Date(Date.now() - 86400e3 - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16)
  return (
    <form class='inline' onSubmit={submit} aria-labelledby='recover-title'>
      <h2 id='recover-title'>Recover failed deliveries</h2>
      <p class='hint'>Queues again every delivery to this endpoint that finally failed, of the events created since:</p>
      <label>Since <input type='datetime-local' name='since' required defaultValue={dayAgo} /></label>
      <button type='submit' class='secondary'>Recover</button>
      <ErrorBox error={error} />
      <p class='status' aria-live='polite'>{result && `Queued ${result.queued} ${result.queued === 1 ? 'delivery' : 'deliveries'} again.`}</p>
    </form>
  )
}

/** The endpoint's circuit breaker, as its `health` says. */
function Breaker ({ health }) {
  return (
    <dl class='facts breaker' aria-label='Circuit breaker'>
      <dt>Breaker</dt><dd data-testid='breaker'>{health.state === 'open' ? 'open: deliveries wait for a probe' : 'closed'}</dd>
      <dt>Failures in a row</dt><dd>{health.consecutive_failures}</dd>
      {health.failing_since && <><dt>Failing since</dt><dd><Time value={health.failing_since} /></dd></>}
      {health.next_probe_at && <><dt>Next probe</dt><dd><Time value={health.next_probe_at} /></dd></>}
      {health.paused_until && <><dt>Paused until (429)</dt><dd><Time value={health.paused_until} /></dd></>}
      {health.slow && <><dt>Slow</dt><dd>yes: at most 10 attempts at once</dd></>}
      {health.slow_lane && !health.slow && <><dt>Slow lane</dt><dd>yes: answers in 0.5 s or more, delivered from the slow lane</dd></>}
      {health.disabled_reason && <><dt>Disabled by the breaker</dt><dd>{health.disabled_reason}</dd></>}
    </dl>
  )
}

export function EndpointDetail ({ client, id }) {
  const [endpoint, error, reload] = useLoad(() => client.webhooks.endpoints.retrieve(id), [id])
  const [editing, setEditing] = useState(false)
  const [secret, setSecret] = useState(null)
  const [actionError, setActionError] = useState(null)
  const act = async (fn) => {
    setActionError(null)
    try { await fn() } catch (err) { setActionError(err) }
  }
  const setStatus = (status) => act(async () => { await client.webhooks.endpoints.update(id, { status }); reload() })
  const rotate = () => act(async () => { setSecret((await client.webhooks.endpoints.rotateSecret(id)).secret) })
  const remove = () => act(async () => { await client.webhooks.endpoints.del(id); go('endpoints') })
  const save = async (params) => { await client.webhooks.endpoints.update(id, params); setEditing(false); reload() }
  return (
    <section aria-labelledby='endpoint-title'>
      <p><a href='#/endpoints'>← Webhook endpoints</a></p>
      <h1 id='endpoint-title'>{endpoint?.url ?? id}</h1>
      <ErrorBox error={error ?? actionError} />
      {endpoint && !editing && (
        <>
          <dl class='facts'>
            <dt>Id</dt><dd><code>{endpoint.id}</code></dd>
            <dt>Status</dt><dd><Status status={endpoint.status} /></dd>
            <dt>Events</dt><dd>{endpoint.enabled_events.join(', ')}</dd>
            <dt>Description</dt><dd>{endpoint.description ?? '—'}</dd>
            <dt>Rate limit</dt><dd>{endpoint.rate_limit === null ? 'none' : `${endpoint.rate_limit} per second`}</dd>
            <dt>Created</dt><dd><Time value={endpoint.created_at} /></dd>
          </dl>
          <Breaker health={endpoint.health} />
          <div class='actions'>
            <button type='button' class='secondary' onClick={() => setEditing(true)}>Edit</button>
            {endpoint.status === 'enabled'
              ? <button type='button' class='secondary' onClick={() => setStatus('disabled')}>Disable</button>
              : <button type='button' class='secondary' onClick={() => setStatus('enabled')}>Enable</button>}
            <Confirm label='Rotate secret' question='The old secret keeps signing for 24 hours. Rotate?' onConfirm={rotate} />
            <Confirm label='Delete' question='Delete this endpoint?' onConfirm={remove} danger />
          </div>
        </>
      )}
      {secret && <SecretOnce secret={secret} onDone={() => setSecret(null)} />}
      {endpoint && editing && <EndpointForm initial={endpoint} submitLabel='Save' onSubmit={save} onCancel={() => setEditing(false)} />}
      {endpoint && <Health client={client} id={id} />}
      {endpoint && endpoint.status === 'enabled' && <Recover client={client} id={id} />}
    </section>
  )
}
