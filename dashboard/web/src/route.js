// Hash routes: `#/events/evt_1?type=x` → { path: ['events', 'evt_1'], query }.
import { useEffect, useState } from 'preact/hooks'

/** The current route. */
function parseHash () {
  const [path, qs] = window.location.hash.replace(/^#\/?/, '').split('?', 2)
  return { path: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(qs ?? '') }
}

export function go (path, query) {
  const qs = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString() : ''
  window.location.hash = `#/${path}${qs ? `?${qs}` : ''}`
}

export function useRoute () {
  const [route, setRoute] = useState(parseHash)
  useEffect(() => {
    const on = () => setRoute(parseHash())
    window.addEventListener('hashchange', on)
    return () => window.removeEventListener('hashchange', on)
  }, [])
  return route
}
