// Events: the list (filters by type or family and created range, cursor paging, auto-refresh) and
// one event (its JSON, and per endpoint the timeline of delivery attempts, with resend).
import { useEffect, useState } from 'preact/hooks'
import { eventTypes } from './api.js'
import { go } from './route.js'
import { ErrorBox, Json, Status, TableWrap, Time, useLoad } from './ui.jsx'

const PAGE = 25
const REFRESH_MS = 5000

/** Unix seconds ↔ the value of a datetime-local input (the viewer's zone). */
const toLocalInput = (secs) => {
  if (!secs) return ''
  const d = new Date(Number(secs) * 1000)
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16)
}
const fromLocalInput = (value) => (value ? String(Math.floor(new Date(value).getTime() / 1000)) : '')

/** The type picker's options: every family (`payment.*`) and every type, with its description. */
export function TypeOptions ({ catalogue }) {
  return catalogue?.families.map((f) => (
    <optgroup key={f.family} label={`${f.family} events`}>
      <option value={`${f.family}.*`}>{`${f.family}.* (every ${f.family} event)`}</option>
      {f.types.map((t) => <option key={t.type} value={t.type}>{`${t.type} (${t.description})`}</option>)}
    </optgroup>
  ))
}

export function EventsPage ({ client, query }) {
  const filters = { type: query.get('type') ?? '', from: query.get('from') ?? '', to: query.get('to') ?? '' }
  const cursor = { after: query.get('after') ?? '', before: query.get('before') ?? '' }
  const [catalogue] = useLoad(eventTypes, [])
  const [auto, setAuto] = useState(false)
  const [updated, setUpdated] = useState(null)
  const key = query.toString()
  const [page, error, reload] = useLoad(async () => {
    const page = await client.events.list({
      limit: PAGE,
      type: filters.type || undefined,
      created: filters.from || filters.to ? { gte: filters.from || undefined, lte: filters.to || undefined } : undefined,
      starting_after: cursor.after || undefined,
      ending_before: cursor.before || undefined
    })
    setUpdated(new Date())
    return page
  }, [key])
  // Auto-refresh reloads the newest page only: a page further back would shift under the reader.
  const first = !cursor.after && !cursor.before
  useEffect(() => {
    if (!auto || !first) return
    const timer = setInterval(reload, REFRESH_MS)
    return () => clearInterval(timer)
  }, [auto, first, key])

  const apply = (e) => {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    go('events', { type: f.get('type'), from: fromLocalInput(f.get('from')), to: fromLocalInput(f.get('to')) })
  }
  const described = (type) => catalogue?.families.flatMap((f) => f.types).find((t) => t.type === type)?.description
  const data = page?.data ?? []
  // With ending_before the page came backwards: there are newer events when has_more says so.
  const newer = cursor.before ? page?.has_more : Boolean(cursor.after)
  const older = cursor.before ? true : page?.has_more
  return (
    <section aria-labelledby='events-title'>
      <h1 id='events-title'>Events</h1>
      {/* Rendered once the types are known, so that the type picker starts on the filter's value. */}
      {catalogue && (
      <form class='filters' onSubmit={apply} aria-label='Filter events'>
        <label>Type
          <select name='type' defaultValue={filters.type}>
            <option value=''>All types</option>
            <TypeOptions catalogue={catalogue} />
          </select>
        </label>
        <label>Created from <input type='datetime-local' name='from' defaultValue={toLocalInput(filters.from)} /></label>
        <label>to <input type='datetime-local' name='to' defaultValue={toLocalInput(filters.to)} /></label>
        <button type='submit'>Apply</button>
        <button type='button' class='secondary' onClick={() => go('events')}>Clear</button>
        <label class='toggle'><input type='checkbox' checked={auto} onChange={(e) => setAuto(e.currentTarget.checked)} /> Auto-refresh</label>
      </form>
      )}
      <p class='status' aria-live='polite'>{updated && `Updated ${updated.toLocaleTimeString()}`}{auto && !first && ' (auto-refresh follows the newest page only)'}</p>
      <ErrorBox error={error} />
      <TableWrap label='Events'>
        <table>
          <caption class='visually-hidden'>Events, newest first</caption>
          <thead><tr><th scope='col'>Event</th><th scope='col'>Type</th><th scope='col'>Created</th><th scope='col'>Pending webhooks</th></tr></thead>
          <tbody>
            {data.map((e) => (
              <tr key={e.id}>
                <td><a href={`#/events/${encodeURIComponent(e.id)}`}><code>{e.id}</code></a></td>
                <td><span class='type'>{e.type}</span><small class='desc'>{described(e.type)}</small></td>
                <td><Time value={e.created_at} /></td>
                <td>{e.pending_webhooks}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {page && data.length === 0 && <p>No events match.</p>}
      <nav class='pager' aria-label='Pages'>
        <button type='button' class='secondary' disabled={!newer || data.length === 0} onClick={() => go('events', { ...filters, before: data[0]?.id })}>← Newer</button>
        <button type='button' class='secondary' disabled={!older || data.length === 0} onClick={() => go('events', { ...filters, after: data[data.length - 1]?.id })}>Older →</button>
      </nav>
    </section>
  )
}

/** Attempts grouped by endpoint, oldest first in each. */
function byEndpoint (attempts) {
  const groups = new Map()
  for (const a of attempts) groups.set(a.endpoint, [...(groups.get(a.endpoint) ?? []), a])
  return groups
}

function Attempt ({ a }) {
  const outcome = a.http_status ? `HTTP ${a.http_status}` : (a.error ?? 'no answer')
  return (
    <li class={`attempt attempt-${a.status}`}>
      <span class='when'><Time value={a.created_at} /></span>
      <span>Attempt {a.attempt}</span>
      <Status status={a.status} />
      <span class='outcome'>{outcome}</span>
      <span>{a.latency_ms} ms</span>
      {a.next_retry_at && <span class='next'>next retry <Time value={a.next_retry_at} /></span>}
      {a.http_status && a.error && <span class='outcome'>{a.error}</span>}
      {a.response_body && (
        <details>
          <summary>Response body</summary>
          <pre>{a.response_body}</pre>
        </details>
      )}
    </li>
  )
}

// Every attempt of an event, oldest first (its pages of 100 walked).
async function allDeliveries (client, id) {
  const data = []
  for await (const attempt of client.events.deliveries(id, { limit: 100 })) data.push(attempt)
  return { data }
}

export function EventDetail ({ client, id }) {
  const [event, error] = useLoad(() => client.events.retrieve(id), [id])
  const [deliveries, deliveriesError, reloadDeliveries] = useLoad(() => allDeliveries(client, id), [id])
  const [endpoints] = useLoad(() => client.webhooks.endpoints.list({ limit: 100 }), [])
  const [notice, setNotice] = useState(null)
  const [resendError, setResendError] = useState(null)
  const attempts = deliveries?.data ?? []
  const groups = byEndpoint(attempts)
  const urlOf = (ep) => endpoints?.data.find((e) => e.id === ep)?.url
  const enabled = endpoints?.data.filter((e) => e.status === 'enabled') ?? []

  // After a resend, reads the attempts again until a new one shows (at most 60 times, a second apart).
  const resend = async (endpoint) => {
    setResendError(null)
    try {
      await client.webhooks.endpoints.resend(endpoint, { event: id })
      setNotice(`Resent to ${urlOf(endpoint) ?? endpoint}; waiting for the attempt…`)
      const before = attempts.length
      for (let i = 0; i < 60; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000))
        const fresh = await allDeliveries(client, id)
        if (fresh.data.length > before) { setNotice(`Resent to ${urlOf(endpoint) ?? endpoint}.`); break }
      }
      reloadDeliveries()
    } catch (err) {
      setNotice(null)
      setResendError(err)
    }
  }
  return (
    <section aria-labelledby='event-title'>
      <p><a href='#/events'>← Events</a></p>
      <h1 id='event-title'><code>{id}</code></h1>
      <ErrorBox error={error} />
      {event && (
        <>
          <dl class='facts'>
            <dt>Type</dt><dd>{event.type}</dd>
            <dt>Created</dt><dd><Time value={event.created_at} /></dd>
            <dt>Pending webhooks</dt><dd data-testid='pending'>{event.pending_webhooks}</dd>
          </dl>
          <Json value={event} label='Event JSON' />
        </>
      )}
      <h2>Webhook deliveries</h2>
      <ErrorBox error={deliveriesError ?? resendError} />
      <p class='status' aria-live='polite'>{notice}</p>
      {deliveries && groups.size === 0 && <p>No delivery attempts yet.</p>}
      {[...groups].map(([endpoint, list]) => (
        <article class='delivery' key={endpoint} aria-label={`Deliveries to ${urlOf(endpoint) ?? endpoint}`}>
          <h3><a href={`#/endpoints/${encodeURIComponent(endpoint)}`}>{urlOf(endpoint) ?? endpoint}</a></h3>
          <ol class='timeline'>{list.map((a) => <Attempt key={`${a.attempt}-${a.created_at}`} a={a} />)}</ol>
          <button type='button' onClick={() => resend(endpoint)}>Resend to endpoint</button>
        </article>
      ))}
      {enabled.length > 0 && (
        <form class='inline' onSubmit={(e) => { e.preventDefault(); resend(new FormData(e.currentTarget).get('endpoint')) }}>
          <label>Send to another endpoint
            <select name='endpoint'>{enabled.map((e) => <option key={e.id} value={e.id}>{e.url}</option>)}</select>
          </label>
          <button type='submit' class='secondary'>Resend</button>
        </form>
      )}
    </section>
  )
}
