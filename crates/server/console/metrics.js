// The overview: reads Prometheus's text format from the metrics endpoint and turns two
// scrapes into the numbers an operator looks at first: connections open by protocol, and
// messages and writes per second since the previous scrape.

/** Every sample of a scrape: [{ name, labels: {k: v}, value }]. */
export function parsePrometheus (text) {
  const samples = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (!m) continue
    const labels = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c))
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return samples
}

/** The sum of a metric's samples, by the value of one label. */
export function byLabel (samples, name, label) {
  const out = new Map()
  for (const s of samples) {
    if (s.name !== name) continue
    const key = s.labels[label] ?? ''
    out.set(key, (out.get(key) ?? 0) + s.value)
  }
  return out
}

/**
 * The overview of a scrape, with rates against the previous one (`before`, taken
 * `seconds` earlier; no rates without it).
 */
export function overview (samples, before, seconds) {
  const total = (list, name) => list.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0)
  const rate = (name, filter = () => true) => {
    if (!before || !(seconds > 0)) return null
    const now = total(samples.filter(filter), name)
    const then = total(before.filter(filter), name)
    return Math.max(0, now - then) / seconds
  }
  return {
    connections: byLabel(samples, 'recordsync_connections', 'protocol'),
    rates: [
      ['messages in /s', rate('recordsync_messages_in_total')],
      ['messages out /s', rate('recordsync_messages_out_total')],
      ['writes accepted /s', rate('recordsync_writes_total', (s) => s.labels.outcome === 'accepted')],
      ['writes refused /s', rate('recordsync_writes_total', (s) => s.labels.outcome === 'refused')]
    ]
  }
}
