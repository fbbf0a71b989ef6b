// Helpers for driving the server under test with the real @deepstream/client.
//
// connect() returns a logged-in DeepstreamClient with two additions used by the tests:
//   client.errors    every 'error' the client emitted: [{ error, event, topic }]
//   client.received  every message the client received from the server, as parsed by the
//                    client's own protobuf/JSON parser: [{ topic, action, name, ... }]
// The message tap wraps the client's own socket factory (the public `socketFactory`
// option); it observes and changes nothing.

import { createRequire } from 'node:module'
import pkg from '@deepstream/client'

const require = createRequire(import.meta.url)
const { socketFactory: defaultSocketFactory } = require('@deepstream/client/dist/src/connection/socket-factory')
const T = require('@deepstream/protobuf/dist/types/all')

export const { DeepstreamClient } = pkg
export const { TOPIC, RECORD_ACTION: RA } = T

/** Client options used by every test client: short discard delay so discards reach the server fast. */
export const BASE_OPTIONS = {
  recordDiscardTimeout: 20,
  subscriptionTimeout: 3000,
  recordReadAckTimeout: 3000,
  recordReadTimeout: 4000,
  recordDeleteTimeout: 4000,
  offlineBufferTimeout: 1000
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Rejects with a clear message when `promise` does not settle within `ms`. */
export function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer))
}

/**
 * Polls `predicate` until it returns truthy; fails after `ms`. `what` describes the wait: a
 * string, or a function called on timeout (so the message shows the state at that moment).
 */
export async function waitFor (predicate, ms, what) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await predicate()
    if (v) return v
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for: ${typeof what === 'function' ? what() : what}`)
    }
    await sleep(10)
  }
}

/** Resolves with the arguments of the next `event` emitted by `emitter` (deepstream Emitter). */
export function nextEvent (emitter, event, ms = 3000) {
  return withTimeout(new Promise((resolve) => {
    const handler = (...args) => { emitter.off(event, handler); resolve(args) }
    emitter.on(event, handler)
  }), ms, `event '${event}'`)
}

/**
 * A callback that records its calls and lets a test await the n-th call.
 *   const cb = recorder(); record.subscribe(cb); await cb.nth(1)
 */
export function recorder (name = 'callback') {
  const calls = []
  const waiters = []
  const fn = (...args) => {
    calls.push(args)
    for (const w of waiters.splice(0)) {
      if (calls.length >= w.n) w.resolve(calls[w.n - 1])
      else waiters.push(w)
    }
  }
  fn.calls = calls
  fn.nth = (n, ms = 3000) => {
    if (calls.length >= n) return Promise.resolve(calls[n - 1])
    return withTimeout(new Promise((resolve) => waiters.push({ n, resolve })), ms, `${name} call #${n} (had ${calls.length})`)
  }
  fn.next = (ms) => fn.nth(calls.length + 1, ms)
  /** Waits until some call satisfies `pred`; returns its args. */
  fn.until = (pred, ms = 3000) => waitFor(() => calls.find((args) => pred(...args)), ms, `${name} call matching ${pred}`)
  return fn
}

let uniqCounter = 0
/** A record name unique to this process run. */
export function uniq (prefix = 'rec') {
  return `${prefix}/${process.pid}-${Date.now().toString(36)}-${++uniqCounter}`
}

function tappedSocketFactory (client) {
  return (url, options, heartbeatInterval) => {
    const socket = defaultSocketFactory(url, options, heartbeatInterval)
    let handler = () => {}
    Object.defineProperty(socket, 'onparsedmessages', {
      configurable: true,
      get: () => (messages) => {
        for (const m of messages) client.received.push({ ...m })
        handler(messages)
      },
      set: (fn) => { handler = fn }
    })
    return socket
  }
}

/**
 * Connects and logs in. `server` is a handle from lib/server.mjs.
 * opts.json: use the JSON transport endpoint (/deepstream-json).
 * opts.authData: what to log in with (default: nothing, as an open server accepts).
 */
export async function connect (server, opts = {}) {
  const { json = false, authData, ...rest } = opts
  const url = json ? server.jsonUrl : server.url
  const options = { ...BASE_OPTIONS, ...rest }
  if (json) options.socketOptions = { ...(options.socketOptions || {}), jsonTransportMode: true }
  const holder = { errors: [], received: [] }
  options.socketFactory = tappedSocketFactory(holder)
  const client = new DeepstreamClient(url, options)
  client.transport = json ? 'json' : 'binary'
  client.errors = holder.errors
  client.received = holder.received
  client.on('error', (error, event, topic) => holder.errors.push({ error, event, topic }))
  await withTimeout(authData ? client.login(authData) : client.login(), 5000, `login to ${url}`)
  return client
}

/** Record-topic messages this client received, optionally only for one record name / action. */
export function receivedRecordMessages (client, { name, action } = {}) {
  return client.received.filter((m) => m.topic === TOPIC.RECORD &&
    (name === undefined || m.name === name || (m.names && m.names.includes(name))) &&
    (action === undefined || m.action === action))
}

/**
 * Per-test client pool: `const pool = clientPool(() => server)`; in a test
 * `const [a, b] = await pool.open(2)`; pool.closeAll() in afterEach.
 */
export function clientPool (getServer) {
  let open = []
  return {
    async open (n, opts = {}) {
      const list = []
      for (let i = 0; i < n; i++) {
        const c = await connect(getServer(), opts)
        open.push(c)
        list.push(c)
      }
      return list
    },
    async one (opts = {}) {
      const [c] = await this.open(1, opts)
      return c
    },
    closeAll () {
      for (const c of open) { try { c.close() } catch {} }
      open = []
    }
  }
}

/** Asserts that the client saw no errors (prints them when it did). */
export function errorsOf (...clients) {
  return clients.flatMap((c) => c.errors.map((e) => `${e.topic}/${e.event}: ${JSON.stringify(e.error)}`))
}

export { sleep }
