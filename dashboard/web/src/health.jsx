// An endpoint's health: success rate and p50/p95 latency over the last 24 hours or 7 days, as uPlot
// charts with the same numbers in a table, and its most recent failures.
import { useEffect, useRef, useState } from 'preact/hooks'
import uPlot from 'uplot'
import { ErrorBox, TableWrap, Time, useLoad } from './ui.jsx'

const WINDOWS = {
  day: { label: 'Last 24 hours', secs: 86400, interval: 'hour' },
  week: { label: 'Last 7 days', secs: 7 * 86400, interval: 'day' }
}

const seconds = (iso) => Math.floor(new Date(iso).getTime() / 1000)

/** One uPlot chart of `series` over the points' times; redrawn when the data or the width changes. */
function Chart ({ title, times, series, yLabel, range }) {
  const box = useRef(null)
  useEffect(() => {
    const el = box.current
    if (!el) return
    const opts = {
      title,
      width: Math.max(el.clientWidth, 280),
      height: 220,
      scales: { x: { time: true }, y: range ? { range } : {} },
      axes: [{}, { label: yLabel }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: true, size: 6 }, spanGaps: false }))]
    }
    const plot = new uPlot(opts, [times, ...series.map((s) => s.values)], el)
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 280), height: 220 }))
    resize.observe(el)
    return () => { resize.disconnect(); plot.destroy() }
  }, [title, JSON.stringify(times), JSON.stringify(series)])
  return <figure class='chart' ref={box} aria-label={title} data-points={series.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0)} />
}

const percent = (rate) => (rate === null ? '—' : `${(rate * 100).toFixed(rate === 1 ? 0 : 1)} %`)
const ms = (v) => (v === null ? '—' : `${v} ms`)

export function Health ({ client, id }) {
  const [span, setSpan] = useState('day')
  const w = WINDOWS[span]
  const [stats, error] = useLoad(
    () => client.webhooks.endpoints.stats(id, { since: new Date(Date.now() - w.secs * 1000), interval: w.interval }),
    [id, span]
  )
  const points = stats?.series ?? []
  const times = points.map((p) => seconds(p.start))
  return (
    <section class='health' aria-labelledby='health-title'>
      <h2 id='health-title'>Health</h2>
      <div class='tabs' role='group' aria-label='Window'>
        {Object.entries(WINDOWS).map(([k, v]) => (
          <button type='button' key={k} class={k === span ? '' : 'secondary'} aria-pressed={k === span} onClick={() => setSpan(k)}>{v.label}</button>
        ))}
      </div>
      <ErrorBox error={error} />
      {stats && (
        <>
          <dl class='facts totals'>
            <dt>Attempts</dt><dd data-testid='attempts'>{stats.attempts}</dd>
            <dt>Success rate</dt><dd>{percent(stats.success_rate)}</dd>
            <dt>Latency p50</dt><dd>{ms(stats.latency_ms.p50)}</dd>
            <dt>Latency p95</dt><dd>{ms(stats.latency_ms.p95)}</dd>
          </dl>
          {stats.has_more && <p class='hint'>More attempts than the newest 10,000 fell in this window; these numbers count the newest 10,000.</p>}
          <div class='charts'>
            <Chart title='Success rate (%)' yLabel='%' range={[0, 100]} times={times} series={[{ label: 'success rate', color: '#1a7f37', values: points.map((p) => (p.success_rate === null ? null : p.success_rate * 100)) }]} />
            <Chart
              title='Latency (ms)' yLabel='ms' times={times} series={[
                { label: 'p50', color: '#0b5cad', values: points.map((p) => p.latency_ms.p50) },
                { label: 'p95', color: '#b35900', values: points.map((p) => p.latency_ms.p95) }
              ]}
            />
          </div>
          <details>
            <summary>The numbers behind the charts</summary>
            <TableWrap label='Attempts per period'>
              <table>
                <thead><tr><th scope='col'>From</th><th scope='col'>Attempts</th><th scope='col'>Succeeded</th><th scope='col'>Success rate</th><th scope='col'>p50</th><th scope='col'>p95</th></tr></thead>
                <tbody>
                  {points.filter((p) => p.attempts > 0).map((p) => (
                    <tr key={p.start}><td><Time value={p.start} /></td><td>{p.attempts}</td><td>{p.succeeded}</td><td>{percent(p.success_rate)}</td><td>{ms(p.latency_ms.p50)}</td><td>{ms(p.latency_ms.p95)}</td></tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          </details>
          <h3>Recent failures</h3>
          {stats.recent_failures.length === 0
            ? <p>No failures in this window.</p>
            : (
              <TableWrap label='Recent failures'>
                <table>
                  <thead><tr><th scope='col'>When</th><th scope='col'>Event</th><th scope='col'>Attempt</th><th scope='col'>Outcome</th><th scope='col'>Latency</th></tr></thead>
                  <tbody>
                    {stats.recent_failures.map((f) => (
                      <tr key={`${f.event}-${f.attempt}-${f.created}`}>
                        <td><Time value={f.created} /></td>
                        <td><a href={`#/events/${encodeURIComponent(f.event)}`}><code>{f.event}</code></a></td>
                        <td>{f.attempt}</td>
                        <td>{f.http_status ? `HTTP ${f.http_status}` : (f.error ?? 'no answer')}</td>
                        <td>{ms(f.latency_ms)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
              )}
        </>
      )}
    </section>
  )
}
