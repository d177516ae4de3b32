// Small pieces every page uses. Everything that came from the API is rendered as text (Preact
// escapes it); nothing here sets HTML from data.
import { useEffect, useState } from 'preact/hooks'

/** A time from the API (RFC 3339 or unix seconds), in the viewer's zone, with the UTC time as title. */
export function Time ({ value }) {
  if (value === null || value === undefined) return <span>—</span>
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value)
  return <time dateTime={d.toISOString()} title={d.toISOString()}>{d.toLocaleString()}</time>
}

export function ErrorBox ({ error }) {
  if (!error) return null
  const detail = [error.code, error.param && `param: ${error.param}`, error.requestId].filter(Boolean).join(' · ')
  return (
    <p class='error' role='alert'>
      {error.message ?? String(error)}
      {detail && <small> ({detail})</small>}
    </p>
  )
}

export function CopyButton ({ text, label = 'Copy' }) {
  const [done, setDone] = useState(false)
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text)
      setDone(true)
      setTimeout(() => setDone(false), 1500)
    } catch {
      setDone(false)
    }
  }
  return <button type='button' class='secondary' onClick={copy}>{done ? 'Copied' : label}</button>
}

/** Pretty JSON as text, with a copy button. */
export function Json ({ value, label }) {
  const text = JSON.stringify(value, null, 2)
  return (
    <div class='json'>
      <div class='json-bar'><span>{label}</span><CopyButton text={text} label='Copy JSON' /></div>
      <pre tabIndex={0} aria-label={label}><code>{text}</code></pre>
    </div>
  )
}

/**
 * A table that scrolls sideways on narrow screens. The scrolling box is a labelled region in the
 * tab order, so keyboard users can scroll it too (WCAG 2.1.1; axe's scrollable-region-focusable).
 */
export function TableWrap ({ label, children }) {
  return <div class='table-wrap' role='region' aria-label={label} tabIndex={0}>{children}</div>
}

export function Status ({ status }) {
  return <span class={`chip chip-${status}`}>{status}</span>
}

/** Loads `load()` (again whenever `deps` change); `[data, error, reload]`. */
export function useLoad (load, deps) {
  const [state, setState] = useState({ data: null, error: null })
  const [tick, setTick] = useState(0)
  useEffect(() => {
    let live = true
    load().then((data) => live && setState({ data, error: null }), (error) => live && setState((s) => ({ data: s.data, error })))
    return () => { live = false }
  }, [...deps, tick])
  return [state.data, state.error, () => setTick((t) => t + 1)]
}

/** A secret shown once, with a copy button and the warning that it will not be shown again. */
export function SecretOnce ({ secret, onDone, title = 'Signing secret', children }) {
  return (
    <section class='secret' aria-labelledby='secret-title'>
      <h3 id='secret-title'>{title}</h3>
      <p>Copy it now: it is not shown again.</p>
      {children}
      <p><code class='secret-value'>{secret}</code></p>
      <CopyButton text={secret} label={`Copy ${title.toLowerCase()}`} />
      <button type='button' onClick={onDone}>Done</button>
    </section>
  )
}

/** A button that asks once more before it acts. */
export function Confirm ({ label, question, onConfirm, danger }) {
  const [asking, setAsking] = useState(false)
  if (!asking) return <button type='button' class={danger ? 'danger' : 'secondary'} onClick={() => setAsking(true)}>{label}</button>
  return (
    <span class='confirm' role='group' aria-label={question}>
      {question}{' '}
      <button type='button' class={danger ? 'danger' : ''} onClick={() => { setAsking(false); onConfirm() }}>Yes, {label.toLowerCase()}</button>
      <button type='button' class='secondary' onClick={() => setAsking(false)}>No</button>
    </span>
  )
}

