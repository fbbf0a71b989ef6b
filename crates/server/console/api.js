// The console's only way to the server: the REST API (/v1), the login endpoint
// (POST /api/auth) and the metrics, exactly as any other client calls them. Whoever logs
// in, the server's permission rules decide what each call may see or do.

/** A refused or failed call: the HTTP status and the REST API's error code and message. */
export class ApiError extends Error {
  constructor (status, code, message, body) {
    super(message)
    this.status = status
    this.code = code
    this.body = body
  }
}

const TOKEN_KEY = 'recordsync-console-credentials'

export class Api {
  constructor (settings) {
    this.settings = settings
    // kept for this browser tab only
    this.authorization = sessionStorage.getItem(TOKEN_KEY)
  }

  /** Logs in: a token from the login endpoint, or Basic credentials where there is none. */
  async login (username, password) {
    if (this.settings.auth) {
      const res = await fetch(this.settings.auth, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username, password })
      })
      const text = await res.text()
      if (!res.ok) throw new ApiError(res.status, 'unauthenticated', text.trim() || res.statusText)
      this.authorization = 'Bearer ' + JSON.parse(text).token
    } else {
      const bytes = new TextEncoder().encode(`${username}:${password}`)
      this.authorization = 'Basic ' + btoa(String.fromCharCode(...bytes))
    }
    sessionStorage.setItem(TOKEN_KEY, this.authorization)
  }

  logout () {
    this.authorization = null
    sessionStorage.removeItem(TOKEN_KEY)
  }

  /** A REST call; answers { status, text, etag }, or throws an ApiError for a refusal. */
  async call (method, path, { body, headers = {}, signal } = {}) {
    const h = { ...headers }
    if (this.authorization) h.Authorization = this.authorization
    if (body !== undefined) h['Content-Type'] = 'application/json'
    const res = await fetch(this.settings.rest + path, { method, headers: h, body, signal })
    const text = await res.text()
    if (!res.ok) throw refusal(res, text)
    return { status: res.status, text, etag: res.headers.get('ETag') }
  }

  /** A page of record names with versions: { records: [{name, version}], next }. */
  async list (prefix, cursor, limit = 25) {
    const q = new URLSearchParams({ prefix, limit: String(limit) })
    if (cursor) q.set('cursor', cursor)
    return JSON.parse((await this.call('GET', `/records?${q}`)).text)
  }

  /** The record's value as the server's JSON text (numbers as written), and its version. */
  async read (name, version) {
    const q = version === undefined ? '' : `?version=${version}`
    const { text, etag } = await this.call('GET', `/records/${encodeName(name)}${q}`)
    return { text, version: etag ? Number(etag.replaceAll('"', '')) : version }
  }

  /** A page of the record's journal, oldest first, from version `from` on. */
  async history (name, from = 0) {
    return JSON.parse((await this.call('GET', `/records/${encodeName(name)}/history?from=${from}`)).text)
  }

  /** Writes `text` (JSON, sent as typed) onto version `base` only: 412 if it moved on. */
  async put (name, text, base) {
    const headers = base === undefined ? {} : { 'If-Match': `"${base}"` }
    return this.call('PUT', `/records/${encodeName(name)}`, { body: text, headers })
  }

  async remove (name, base) {
    const headers = base === undefined ? {} : { 'If-Match': `"${base}"` }
    return this.call('DELETE', `/records/${encodeName(name)}`, { headers })
  }

  /** The metrics' text, or null when the server does not serve them. */
  async metrics () {
    if (!this.settings.metrics) return null
    const res = await fetch(this.settings.metrics)
    if (!res.ok) throw new ApiError(res.status, 'metrics', `the metrics answered ${res.status}`)
    return res.text()
  }

  /**
   * Watches a record: calls onEvent({ event, version, valueText }) for its current state and
   * then every change, until `signal` aborts. EventSource cannot send an Authorization
   * header, so the stream is read with fetch. Resolves when the stream ends (the server
   * stopped); `lastEventId`, the last version seen, resumes a stream that ended.
   */
  async watch (name, onEvent, signal, lastEventId) {
    const headers = { Accept: 'text/event-stream' }
    if (this.authorization) headers.Authorization = this.authorization
    // resumed: the server sends the versions after this one, then the live changes
    if (lastEventId !== undefined && lastEventId !== null) headers['Last-Event-ID'] = String(lastEventId)
    const res = await fetch(`${this.settings.rest}/records/${encodeName(name)}`, { headers, signal })
    if (!res.ok) throw refusal(res, await res.text())
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buffer += value.replaceAll('\r\n', '\n')
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const event = parseEvent(block)
        if (event) onEvent(event)
      }
    }
  }
}

/** One server-sent event's block: its event name, and the version and value it carries. */
function parseEvent (block) {
  let event = 'message'
  const data = []
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue // a comment: the keep-alive
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'event') event = value
    else if (field === 'data') data.push(value)
  }
  if (data.length === 0) return null
  const text = data.join('\n')
  // {"version":N,"value":VALUE}: VALUE is taken as text, so its numbers stay as written
  const m = /^\{"version":(\d+|null)(,"value":)?/.exec(text)
  if (!m) return { event, version: null, valueText: null }
  const version = m[1] === 'null' ? null : Number(m[1])
  const valueText = m[2] ? text.slice(m[0].length, -1) : null
  return { event, version, valueText }
}

function refusal (res, text) {
  try {
    const { error } = JSON.parse(text)
    return new ApiError(res.status, error.code, error.message, error)
  } catch {
    return new ApiError(res.status, 'http', `${res.status} ${res.statusText}: ${text.slice(0, 200)}`)
  }
}

/** A record name in a URL, slashes and all percent-encoded: `a/history` stays a name. */
export function encodeName (name) {
  return encodeURIComponent(name)
}
