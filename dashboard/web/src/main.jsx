// The PayGate dashboard: events, webhooks and API keys. A single page on hash routes (#/events,
// #/events/evt_…, #/endpoints, #/endpoints/we_…, #/keys), so it works under any path and stage.
import 'uplot/dist/uPlot.min.css'
import './style.css'
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { clientFor, forgetKey, modeOf, signIn, storedKey } from './api.js'
import { EventDetail, EventsPage } from './events.jsx'
import { EndpointDetail, EndpointsPage } from './endpoints.jsx'
import { KeysPage } from './keys.jsx'
import { ErrorBox } from './ui.jsx'
import { go, useRoute } from './route.js'

function SignIn ({ onSignedIn }) {
  const [error, setError] = useState(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e) => {
    e.preventDefault()
    const key = new FormData(e.currentTarget).get('key') ?? ''
    setBusy(true)
    setError(null)
    try {
      onSignedIn(await signIn(String(key)), String(key).trim())
    } catch (err) {
      setError(err.statusCode === 401 ? { message: 'That key was not accepted: check that it is a secret key (sk_test_… or sk_live_…) and has not been revoked.' } : err)
    } finally {
      setBusy(false)
    }
  }
  return (
    <main class='signin'>
      <h1>PayGate dashboard</h1>
      <form onSubmit={submit}>
        <label for='key'>Secret API key</label>
        <input id='key' name='key' type='password' autocomplete='off' spellcheck={false} required placeholder='sk_test_…' />
        <p class='hint'>The key stays in this tab (sessionStorage) and is sent only to this API.</p>
        <button type='submit' disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
        <ErrorBox error={error} />
      </form>
    </main>
  )
}

function App () {
  const [session, setSession] = useState(() => {
    const key = storedKey()
    return key ? { client: clientFor(key), mode: modeOf(key), key } : null
  })
  const route = useRoute()
  useEffect(() => {
    document.title = session ? `PayGate dashboard (${session.mode} mode)` : 'PayGate dashboard'
  }, [session])
  if (!session) return <SignIn onSignedIn={(client, key) => setSession({ client, mode: modeOf(key), key })} />
  const signOut = () => { forgetKey(); setSession(null); go('events') }
  // After rolling the session's own key: the new key, checked like any sign-in.
  const signInWith = async (key) => { const client = await signIn(key); setSession({ client, mode: modeOf(key), key }) }
  const [section, id] = route.path
  const page = section === 'endpoints'
    ? (id ? <EndpointDetail client={session.client} id={id} /> : <EndpointsPage client={session.client} />)
    : section === 'keys'
      ? <KeysPage client={session.client} sessionKey={session.key} onSignInWith={signInWith} />
      : (section === 'events' && id ? <EventDetail client={session.client} id={id} /> : <EventsPage client={session.client} query={route.query} />)
  // Each navigation mounts its page afresh, so that what it shows is read when it is visited.
  const routeKey = window.location.hash
  return (
    <>
      <header class={`top mode-${session.mode}`}>
        <a class='brand' href='#/events'>PayGate</a>
        <nav aria-label='Sections'>
          <a href='#/events' aria-current={section !== 'endpoints' && section !== 'keys' ? 'page' : undefined}>Events</a>
          <a href='#/endpoints' aria-current={section === 'endpoints' ? 'page' : undefined}>Webhook endpoints</a>
          <a href='#/keys' aria-current={section === 'keys' ? 'page' : undefined}>API keys</a>
        </nav>
        <strong class='mode' data-mode={session.mode}>{session.mode === 'live' ? 'Live mode' : 'Test mode'}</strong>
        <button type='button' class='secondary' onClick={signOut}>Sign out</button>
      </header>
      <main key={routeKey}>{page}</main>
    </>
  )
}

render(<App />, document.getElementById('app'))
