// API keys: the keys of this account and mode (never the keys themselves), a restricted key made
// with per-resource permissions, and rolling or revoking a key, each after a confirm. A new key is
// shown once. Rolling the key this tab signed in with, with no grace, ends the session's key: the
// page says so and offers to sign in with the new one.
import { useState } from 'preact/hooks'
import { Confirm, ErrorBox, SecretOnce, TableWrap, Time, useLoad } from './ui.jsx'

/** How long a rolled key keeps working: the choices of Stripe's dashboard. */
const GRACE = [
  ['now', 0],
  ['in 1 hour', 3600],
  ['in 24 hours', 86400],
  ['in 3 days', 3 * 86400],
  ['in 7 days', 7 * 86400]
]

const describe = (k) => (k.permissions ? Object.entries(k.permissions).map(([r, a]) => `${r}: ${a}`).join(', ') : 'everything')

/** `sk_test_…abcd` of a whole key. */
export const hintOf = (key) => `${key.slice(0, 8)}…${key.slice(-4)}`

function CreateForm ({ onCreate, onCancel }) {
  const [error, setError] = useState(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e) => {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    setBusy(true)
    setError(null)
    try {
      await onCreate({
        name: String(f.get('name')).trim() || undefined,
        permissions: { events: String(f.get('events')), webhook_endpoints: String(f.get('webhook_endpoints')) }
      })
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  return (
    <form class='endpoint-form' onSubmit={submit} aria-labelledby='create-key-title'>
      <h2 id='create-key-title'>New restricted key</h2>
      <label>Name <input name='name' type='text' maxLength={100} placeholder='Reporting' /></label>
      <label>Events
        <select name='events'>
          <option value='none'>None</option>
          <option value='read' selected>Read</option>
        </select>
      </label>
      <label>Webhook endpoints
        <select name='webhook_endpoints'>
          <option value='none'>None</option>
          <option value='read'>Read</option>
          <option value='write'>Write</option>
        </select>
      </label>
      <ErrorBox error={error} />
      <button type='submit' disabled={busy}>Create key</button>
      <button type='button' class='secondary' onClick={onCancel}>Cancel</button>
    </form>
  )
}

/** Roll: choose when the old key stops, then confirm. */
function Roll ({ apiKey, onRoll }) {
  const [grace, setGrace] = useState('0')
  const when = GRACE.find(([, s]) => String(s) === grace)?.[0] ?? 'now'
  return (
    <span class='roll'>
      <label>Old key stops{' '}
        <select value={grace} onChange={(e) => setGrace(e.currentTarget.value)} aria-label={`When ${apiKey.hint} stops working`}>
          {GRACE.map(([label, s]) => <option key={s} value={String(s)}>{label}</option>)}
        </select>
      </label>{' '}
      <Confirm label='Roll' question={`Replace ${apiKey.hint} with a new key; it stops working ${when}. Roll?`} onConfirm={() => onRoll(apiKey, Number(grace))} />
    </span>
  )
}

export function KeysPage ({ client, sessionKey, onSignInWith }) {
  const [list, error, reload] = useLoad(() => client.apiKeys.list({ limit: 100 }), [client])
  const [adding, setAdding] = useState(false)
  const [shown, setShown] = useState(null) // { secret, title, endedSession }
  const [actionError, setActionError] = useState(null)
  const current = hintOf(sessionKey)
  const act = async (fn) => {
    setActionError(null)
    try { await fn() } catch (err) { setActionError(err) }
  }
  const create = async (params) => {
    const created = await client.apiKeys.create(params)
    setAdding(false)
    setShown({ secret: created.secret, title: 'Restricted key' })
    reload()
  }
  const roll = (k, expiresIn) => act(async () => {
    const rolled = await client.apiKeys.roll(k.id, { expires_in: expiresIn })
    const endedSession = k.hint === current && expiresIn === 0
    setShown({ secret: rolled.secret, title: k.type === 'secret' ? 'Secret key' : 'Restricted key', endedSession })
    if (!endedSession) reload()
  })
  const revoke = (k) => act(async () => { await client.apiKeys.revoke(k.id); reload() })
  return (
    <section aria-labelledby='keys-title'>
      <h1 id='keys-title'>API keys</h1>
      <p class='hint'>The keys of this account in this mode. A key is shown once, when it is made; after that only its last four characters.</p>
      <ErrorBox error={error ?? actionError} />
      {shown && (
        <SecretOnce secret={shown.secret} title={shown.title} onDone={() => setShown(null)}>
          {shown.endedSession && (
            <p role='status'>
              This replaces the key you signed in with, which no longer works.{' '}
              <button type='button' onClick={() => onSignInWith(shown.secret)}>Sign in with the new key</button>
            </p>
          )}
        </SecretOnce>
      )}
      {adding
        ? <CreateForm onCreate={create} onCancel={() => setAdding(false)} />
        : <button type='button' onClick={() => { setAdding(true); setShown(null) }}>Create a restricted key</button>}
      <TableWrap label='API keys'>
        <table>
          <caption class='visually-hidden'>API keys</caption>
          <thead><tr><th scope='col'>Key</th><th scope='col'>Type</th><th scope='col'>Permissions</th><th scope='col'>Created</th><th scope='col'>Last used</th><th scope='col'>Expires</th><th scope='col'>Actions</th></tr></thead>
          <tbody>
            {list?.data.map((k) => (
              <tr key={k.id} data-key-id={k.id}>
                <td><code>{k.hint}</code>{k.name && <small class='desc'>{k.name}</small>}{k.hint === current && <small class='desc'>this session's key</small>}</td>
                <td>{k.type}</td>
                <td>{describe(k)}</td>
                <td><Time value={k.created} /></td>
                <td>{k.last_used ? new Date(k.last_used).toISOString().slice(0, 10) : 'never'}</td>
                <td>{k.expires_at ? <Time value={k.expires_at} /> : '—'}</td>
                <td class='actions'>
                  {!k.expires_at && <Roll apiKey={k} onRoll={roll} />}
                  {(k.type === 'restricted' || k.expires_at) && <Confirm label='Revoke' question={`${k.hint} stops working now. Revoke?`} onConfirm={() => revoke(k)} danger />}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </section>
  )
}
