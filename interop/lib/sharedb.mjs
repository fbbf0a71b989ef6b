// Helpers for driving a ShareDB server with the real npm `sharedb` 7 client.
//
// The server under test is reached at SHAREDB_URL (ws://HOST:PORT/sharedb); SHAREDB_TARGET names
// it: `peer` (the reference ShareDB 7 server, peers/sharedb-server.js) or `recordsync`. For
// recordsync, DEEPSTREAM_URL is the same server's deepstream door (cross-protocol tests).
// run.sh (targets sharedb-peer / sharedb-recordsync) starts the server and sets all three through
// tools/sharedb-target.mjs.
//
// connectShareDB() returns a connected `sharedb/lib/client` Connection over a `ws` WebSocket with:
//   conn.received  every message the server sent, as JSON (copied before the client touches it)
//   conn.sent      every message the client sent
//   conn.errors    every 'error' the connection emitted
//   conn.reconnect()  a new socket for the same Connection (the client resends its src in `hs`)

import { createRequire } from 'node:module'
import { appendFileSync } from 'node:fs'
import { afterEach, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { withTimeout, waitFor, sleep } from './client.mjs'

const require = createRequire(import.meta.url)
const ShareDBClient = require('sharedb/lib/client')
export const { Connection } = ShareDBClient
export const json0 = require('ot-json0').type
export const JSON0_URI = 'http://sharejs.org/types/JSONv0'

export const SHAREDB_URL = process.env.SHAREDB_URL
export const SHAREDB_TARGET = process.env.SHAREDB_TARGET || 'peer'
export const DEEPSTREAM_URL = process.env.DEEPSTREAM_URL
if (!SHAREDB_URL) {
  throw new Error('SHAREDB_URL is not set: run these tests through interop/run.sh sharedb-peer | sharedb-recordsync')
}

/** Default per-test timeout: a hanging feature fails in seconds, not minutes. */
export const T = { timeout: 15000 }
/** How long a single wait for the server may take. */
export const WAIT = 4000

export { withTimeout, waitFor, sleep }

/** Promisifies a node-style call: await cb((done) => doc.fetch(done)). Rejects with the ShareDB error. */
export function cb (fn, what = 'callback', ms = WAIT) {
  return withTimeout(new Promise((resolve, reject) => {
    fn((err, ...rest) => err ? reject(err) : resolve(rest.length > 1 ? rest : rest[0]))
  }), ms, what)
}

/** Resolves with the error a node-style call ends with; fails when it succeeds. */
export async function cbError (fn, what = 'callback', ms = WAIT) {
  try {
    const r = await cb(fn, what, ms)
    throw new assert.AssertionError({ message: `${what}: expected an error, got success (${JSON.stringify(r)})` })
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e
    return e
  }
}

function tap (conn, socket) {
  const send = socket.send.bind(socket)
  socket.send = (data, ...rest) => {
    try { conn.sent.push(JSON.parse(data)) } catch { conn.sent.push(data) }
    return send(data, ...rest)
  }
  socket.on('message', (data) => {
    const text = String(data)
    try { conn.received.push(JSON.parse(text)) } catch { conn.received.push(text) }
  })
}

/** Opens a Connection and waits until it is 'connected' (handshake done). */
export async function connectShareDB (url = SHAREDB_URL) {
  const socket = new WebSocket(url)
  const conn = new Connection(socket)
  conn.received = []
  conn.sent = []
  conn.errors = []
  conn.url = url
  tap(conn, socket)
  conn.on('error', (e) => conn.errors.push(e))
  await connected(conn, socket, url)
  conn.reconnect = async () => {
    // the client must see the old socket close before it takes a new one ('disconnected' ->
    // 'connecting' is the only way back to 'connected')
    if (conn.state === 'connected' || conn.state === 'connecting') {
      const down = withTimeout(new Promise((resolve) => {
        const h = (st) => { if (st === 'disconnected' || st === 'closed') { conn.off('state', h); resolve() } }
        conn.on('state', h)
      }), WAIT, 'old socket closed')
      conn.socket.close()
      await down
    }
    const s = new WebSocket(url)
    tap(conn, s)
    conn.bindToSocket(s)
    await connected(conn, s, url)
  }
  return conn
}

/** Waits for the handshake; fails at once (with the reason) when the socket cannot open. */
function connected (conn, socket, url) {
  let onError
  const failed = new Promise((resolve, reject) => {
    onError = (e) => reject(new Error(`cannot connect to ${url}: ${e && e.message ? e.message : e}`))
    socket.once('error', onError)
  })
  return Promise.race([whenState(conn, 'connected', `handshake with ${url}`), failed])
    .finally(() => socket.off('error', onError))
}

/** Waits until conn.state is `state`. */
export function whenState (conn, state, what = state) {
  if (conn.state === state) return Promise.resolve()
  return withTimeout(new Promise((resolve) => {
    const h = (s) => { if (s === state) { conn.off('state', h); resolve() } }
    conn.on('state', h)
  }), WAIT, what)
}

/**
 * Per-file hooks: connections opened through the returned `connect(n)` are closed after each test.
 *   const sdb = useShareDB(); const [a, b] = await sdb.connect(2)
 */
export function useShareDB () {
  let open = []
  const closeAll = () => { for (const c of open) { try { c.close() } catch {} } open = [] }
  afterEach((t) => {
    if (TRACE) trace(t && t.name, open)
    closeAll()
  })
  after(closeAll)
  return {
    async connect (n = 1, url) {
      const list = []
      for (let i = 0; i < n; i++) {
        const c = await connectShareDB(url)
        open.push(c)
        list.push(c)
      }
      return list
    },
    async one (url) { const [c] = await this.connect(1, url); return c },
    /** A raw WebSocket peer (see rawShareDB), closed after the test. */
    async raw (url) {
      const r = await rawShareDB(url)
      open.push(r)
      return r
    }
  }
}

// SHAREDB_TRACE=FILE appends every message of every connection a test opened through useShareDB,
// as JSON lines {test, conn, dir: 'send'|'recv', m}, after each test (for comparing two targets)
const TRACE = process.env.SHAREDB_TRACE
function trace (testName, conns) {
  const lines = []
  for (const [i, c] of conns.entries()) {
    const sent = c.sent || []
    for (const m of sent) lines.push(JSON.stringify({ test: testName, conn: i, dir: 'send', m }))
    for (const m of c.received) lines.push(JSON.stringify({ test: testName, conn: i, dir: 'recv', m }))
  }
  if (lines.length) appendFileSync(TRACE, lines.join('\n') + '\n')
}

let counter = 0
/** A collection name unique to this run (so tests and runs never see each other's documents). */
export function uniqCollection (prefix = 'c') {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${++counter}`
}
/** A document id unique to this run. */
export function uniqId (prefix = 'doc') {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`
}

// --- promisified document calls ---------------------------------------------------------------

export const fetchDoc = (doc) => cb((done) => doc.fetch(done), `fetch ${doc.collection}/${doc.id}`)
export const subscribeDoc = (doc) => cb((done) => doc.subscribe(done), `subscribe ${doc.collection}/${doc.id}`)
export const unsubscribeDoc = (doc) => cb((done) => doc.unsubscribe(done), `unsubscribe ${doc.collection}/${doc.id}`)
export const createDoc = (doc, data, type) => cb((done) => type ? doc.create(data, type, done) : doc.create(data, done), `create ${doc.collection}/${doc.id}`)
export const submitOp = (doc, op) => cb((done) => doc.submitOp(op, done), `submitOp ${JSON.stringify(op)} on ${doc.collection}/${doc.id}`)
export const delDoc = (doc) => cb((done) => doc.del(done), `del ${doc.collection}/${doc.id}`)

/** Creates collection/id with `data` through a connection of its own choosing, returns the doc. */
export async function created (conn, collection, id, data) {
  const doc = conn.get(collection, id)
  await createDoc(doc, data)
  return doc
}

/**
 * Records a doc's events: whole ops ('op batch', with the source flag), create, del, error.
 *   const ev = docEvents(doc); await ev.waitOps(2)
 */
export function docEvents (doc) {
  const ev = { ops: [], creates: 0, dels: [], errors: [] }
  // 'op batch' is one whole op; 'op' fires once per json0 component
  doc.on('op batch', (op, source) => ev.ops.push({ op: JSON.parse(JSON.stringify(op)), source }))
  doc.on('create', () => { ev.creates++ })
  doc.on('del', (data) => ev.dels.push(data))
  doc.on('error', (e) => ev.errors.push(e))
  ev.remoteOps = () => ev.ops.filter((o) => !o.source)
  ev.waitOps = (n, ms = WAIT) => waitFor(() => ev.remoteOps().length >= n, ms,
    () => `${n} remote op events on ${doc.collection}/${doc.id} (had ${JSON.stringify(ev.remoteOps())})`)
  return ev
}

/** The server's current snapshot of a doc, fetched by a fresh connection: { v, type, data }. */
export async function serverSnapshot (collection, id, url) {
  const c = await connectShareDB(url)
  try {
    const doc = c.get(collection, id)
    await fetchDoc(doc)
    return { v: doc.version, type: doc.type ? doc.type.uri : null, data: plain(doc.data) }
  } finally {
    c.close()
  }
}

/** JSON round trip (undefined stays undefined). */
export const plain = (v) => v === undefined ? undefined : JSON.parse(JSON.stringify(v))

/** Messages of action `a` the connection received (optionally only for collection/id). */
export function receivedOf (conn, a, { c, d } = {}) {
  return conn.received.filter((m) => m && m.a === a && (c === undefined || m.c === c) && (d === undefined || m.d === d))
}

/** Fails when a connection emitted an 'error'. */
export function assertNoErrors (...conns) {
  const all = conns.flatMap((c) => c.errors.map((e) => `${e.code}: ${e.message}`))
  assert.deepEqual(all, [], 'connections reported errors')
}

/**
 * A raw WebSocket peer that speaks the wire protocol by hand (for what the client would refuse to
 * send: badly formed ops, unknown types, ops from the future). Handshakes on open.
 *   const r = await rawShareDB(); const reply = await r.request({a: 'f', c, d}, (m) => m.a === 'f')
 */
export async function rawShareDB (url = SHAREDB_URL) {
  const ws = new WebSocket(url)
  const received = []
  const waiters = []
  let closed = null
  ws.on('message', (data) => {
    const text = String(data)
    let m
    try { m = JSON.parse(text) } catch { m = text }
    received.push(m)
    for (const w of waiters.slice()) {
      if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m) }
    }
  })
  ws.on('close', (code, reason) => { closed = { code, reason: String(reason) } })
  await withTimeout(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) }), WAIT, `raw open ${url}`)
  const r = {
    ws,
    received,
    get closedInfo () { return closed },
    sent: [],
    send (m) { r.sent.push(m); ws.send(typeof m === 'string' ? m : JSON.stringify(m)) },
    /** The first message (already received or not) matching pred, after index `from`. */
    next (pred, what = 'message', from = 0, ms = WAIT) {
      const found = received.slice(from).find(pred)
      if (found) return Promise.resolve(found)
      let timer
      return new Promise((resolve, reject) => {
        waiters.push({ pred, resolve: (m) => { clearTimeout(timer); resolve(m) } })
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what} (received: ${JSON.stringify(received).slice(0, 2000)})`)), ms)
      })
    },
    /** Sends m and waits for the first later message matching pred. */
    request (m, pred, what) {
      const from = received.length
      r.send(m)
      return r.next(pred, what || `reply to ${JSON.stringify(m)}`, from)
    },
    close () { try { ws.close() } catch {} }
  }
  r.init = await r.next((m) => m.a === 'init', 'init message')
  r.hs = await r.request({ a: 'hs', id: null, protocol: 1, protocolMinor: 2 }, (m) => m.a === 'hs', 'hs reply')
  r.src = r.hs.id
  return r
}

// --- queries --------------------------------------------------------------------------------------

/** Runs a fetch query; resolves with the Query (results: Docs; extra). */
export function fetchQuery (conn, collection, q, options = null) {
  return cb((done) => {
    const query = conn.createFetchQuery(collection, q, options, (err) => done(err, query))
  }, `fetch query ${JSON.stringify(q)}`)
}

/**
 * Subscribes a live query and records its events:
 *   query.events  [{ type: 'insert'|'remove'|'move'|'extra', ids, index|from,to, extra }]
 */
export async function subscribeQuery (conn, collection, q, options = null) {
  const query = await cb((done) => {
    const query = conn.createSubscribeQuery(collection, q, options, (err) => done(err, query))
    query.events = []
    query.on('insert', (docs, index) => query.events.push({ type: 'insert', ids: docs.map((d) => d.id), index }))
    query.on('remove', (docs, index) => query.events.push({ type: 'remove', ids: docs.map((d) => d.id), index }))
    query.on('move', (docs, from, to) => query.events.push({ type: 'move', ids: docs.map((d) => d.id), from, to }))
    query.on('extra', (extra) => query.events.push({ type: 'extra', extra }))
    query.on('error', (e) => query.events.push({ type: 'error', code: e.code, message: e.message }))
  }, `subscribe query ${JSON.stringify(q)}`)
  return query
}

/** The ids of a query's results, in order. */
export const resultIds = (query) => query.results.map((d) => d.id)

// --- presence ---------------------------------------------------------------------------------

/**
 * Subscribes to a presence channel and records what arrives:
 *   const p = await presenceOn(conn, ch); p.received: [{id, value}]; p.latest(): {id: value}
 */
export async function presenceOn (conn, channel, { subscribe = true } = {}) {
  const presence = conn.getPresence(channel)
  presence.received = []
  presence.on('receive', (id, value) => presence.received.push({ id, value: plain(value) }))
  presence.errors = []
  presence.on('error', (e) => presence.errors.push(e))
  if (subscribe) await cb((done) => presence.subscribe(done), `presence subscribe ${channel}`)
  presence.latest = () => {
    const out = {}
    for (const { id, value } of presence.received) out[id] = value
    return out
  }
  presence.waitFor = (id, value, ms = WAIT) => waitFor(
    () => presence.received.some((r) => r.id === id && JSON.stringify(r.value) === JSON.stringify(value)), ms,
    () => `presence ${id} = ${JSON.stringify(value)} on ${channel} (received ${JSON.stringify(presence.received)})`)
  return presence
}

/** Submits a local presence value and waits for the server's acknowledgement. */
export const submitPresence = (local, value) => cb((done) => local.submit(value, done), `presence submit ${JSON.stringify(value)}`)

// --- random json0 ops (convergence tests) ---------------------------------------------------

/** A fresh document for the random ops to apply to (every field randomOp touches). */
export const randomOpDoc = () => ({ list: ['a', 'b', 'c'], text: 'hello world', n: 0, obj: { k0: 'x' } })

/** A seeded PRNG (mulberry32), so a failing convergence run names the seed that reproduces it. */
export function prng (seed) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6D2B79F5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A random op valid on `data` (shape {list, text, n, obj}). BMP characters only. */
export function randomOp (rand, data, tag) {
  const int = (n) => Math.floor(rand() * n)
  const word = () => `${tag}${int(100)}`
  const list = data.list
  const text = data.text
  switch (int(8)) {
    case 0: return [{ p: ['list', int(list.length + 1)], li: word() }]
    case 1: if (list.length) { const i = int(list.length); return [{ p: ['list', i], ld: list[i] }] } break
    case 2: if (list.length > 1) return [{ p: ['list', int(list.length)], lm: int(list.length) }]; break
    case 3: return [{ p: ['text', int(text.length + 1)], si: word() }]
    case 4: if (text.length) { const at = int(text.length); const len = 1 + int(Math.min(3, text.length - at)); return [{ p: ['text', at], sd: text.slice(at, at + len) }] } break
    case 5: return [{ p: ['n'], na: int(21) - 10 }]
    case 6: {
      const k = `k${int(4)}`
      if (k in data.obj) return rand() < 0.5 ? [{ p: ['obj', k], od: data.obj[k] }] : [{ p: ['obj', k], od: data.obj[k], oi: word() }]
      return [{ p: ['obj', k], oi: word() }]
    }
    case 7: if (list.length) { const i = int(list.length); return [{ p: ['list', i], ld: list[i], li: word() }, { p: ['n'], na: 1 }] } break
  }
  return [{ p: ['n'], na: 1 }]
}
