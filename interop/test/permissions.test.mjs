// Permissions and authentication: the matrix in fixtures/permissions/matrix.json (users,
// operations, record names, expected outcome), run through the real @deepstream/client
// against a server loaded with fixtures/permissions/{permissions.yml, users.yml} by a
// deepstream-style config.yml (file auth, Valve permissions). The same files drive the
// engine-direct Rust test (crates/server/tests/permission_matrix.rs).
//
// Outcomes: allow (the operation succeeds, or fails for a reason other than permission),
// deny (MESSAGE_DENIED), error (MESSAGE_PERMISSION_ERROR: the rule threw). A case's
// `deepstream` field is what deepstream 7 does where recordsync is deliberately stricter.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, INTEROP_DIR, TARGET } from '../lib/server.mjs'
import { connect, withTimeout, DeepstreamClient, BASE_OPTIONS, receivedRecordMessages, RA } from '../lib/client.mjs'

const FIXTURES = join(INTEROP_DIR, 'fixtures', 'permissions')
const { cases } = JSON.parse(readFileSync(join(FIXTURES, 'matrix.json'), 'utf8'))
const runId = `${process.pid.toString(36)}${Date.now().toString(36)}`

let server
const clients = {}

before(async () => {
  server = await startServer({
    security: { permissions: join(FIXTURES, 'permissions.yml'), users: join(FIXTURES, 'users.yml') }
  })
})

after(async () => {
  for (const c of Object.values(clients)) { try { c && c.close() } catch {} }
  if (server) await server.stop()
})

/** Logs in with username/password; resolves with [success, clientData]. */
function login (user, password = 'password') {
  const client = new DeepstreamClient(server.url, { ...BASE_OPTIONS })
  client.errors = []
  client.on('error', (error, event, topic) => client.errors.push({ error, event, topic }))
  return new Promise((resolve) => {
    client.login({ username: user, password }, (success, data) => resolve([client, success, data]))
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function classify (reason) {
  const text = typeof reason === 'string' ? reason : (reason && (reason.message || reason.event)) || String(reason)
  if (text.includes('MESSAGE_PERMISSION_ERROR')) return 'error'
  if (text.includes('MESSAGE_DENIED')) return 'deny'
  return `other: ${text}`
}

/** The permission error the client reported for `name` since `from`, if any. */
function permissionEvent (client, name, from) {
  const m = client.received.slice(from).find((m) => m.name === name &&
    (m.action === RA.MESSAGE_DENIED || m.action === RA.MESSAGE_PERMISSION_ERROR))
  if (!m) return null
  return m.action === RA.MESSAGE_DENIED ? 'deny' : 'error'
}

/** Subscribes; resolves 'allow' when ready, 'deny'/'error' when the server refuses. */
async function subscribe (client, name) {
  const from = client.received.length
  const record = client.record.getRecord(name)
  const deadline = Date.now() + 4000
  while (Date.now() < deadline) {
    if (record.isReady) return { outcome: 'allow', record }
    const refused = permissionEvent(client, name, from)
    if (refused) return { outcome: refused, record }
    await sleep(5)
  }
  return { outcome: 'timeout', record }
}

async function settle (promise) {
  try {
    await withTimeout(promise, 4000, 'operation')
    return 'allow'
  } catch (e) {
    if (e === 'RECORD_NOT_FOUND' || (e && e.message === 'RECORD_NOT_FOUND')) return 'allow'
    return classify(e)
  }
}

async function perform (client, c, name) {
  switch (c.op) {
    case 'snapshot': return settle(client.record.snapshot(name))
    case 'head': return settle(client.record.head(name))
    case 'has': return settle(client.record.has(name))
    case 'setData': return settle(client.record.setDataWithAck(name, c.value))
    case 'setDataPath': return settle(client.record.setDataWithAck(name, c.path, c.value))
    case 'listen': {
      const from = client.received.length
      client.record.listen(name, () => {})
      const deadline = Date.now() + 3000
      while (Date.now() < deadline) {
        const refused = permissionEvent(client, name, from)
        if (refused) return refused
        if (receivedRecordMessages(client, { name, action: RA.LISTEN }).some((m) => m.isAck)) {
          client.record.unlisten(name)
          return 'allow'
        }
        await sleep(5)
      }
      return 'timeout'
    }
  }
  const { outcome, record } = await subscribe(client, name)
  try {
    if (c.op === 'subscribe' || outcome !== 'allow') return outcome
    switch (c.op) {
      case 'set': return await settle(record.setWithAck(c.value))
      case 'setPath': return await settle(record.setWithAck(c.path, c.value))
      case 'erase': return await settle(record.eraseWithAck(c.path))
      case 'delete': return await settle(record.delete())
    }
    throw new Error(`unknown op ${c.op}`)
  } finally {
    if (!record.isDestroyed && c.op !== 'delete') record.discard()
  }
}

async function seed (s, uniqueName) {
  for (const extra of s.also || []) await seed(extra, uniqueName)
  const client = clients[s.user]
  const name = (s.name || '').replaceAll('{u}', uniqueName) || null
  await withTimeout(client.record.setDataWithAck(name || s.target, s.value), 4000, `seed ${name || s.target}`)
}

test('the three matrix users log in; clientData comes back on login', async () => {
  const [a, ok, data] = await login('alice')
  assert.equal(ok, true)
  assert.deepEqual(data, { name: 'Alice' })
  a.close()
  const [b, okB, dataB] = await login('bob')
  assert.equal(okB, true)
  assert.equal(dataB ?? null, null)
  b.close()
  const [c, bad] = await login('alice', 'wrong')
  assert.equal(bad, false)
  c.close()
})

test(`permission matrix: ${cases.length} cases through the real client`, { timeout: 240000 }, async () => {
  // Each user's seeding client logs in once.
  for (const user of ['alice', 'bob', 'carol']) {
    const [client, ok] = await loginTapped(user)
    assert.equal(ok, true, `${user} logs in`)
    clients[user] = client
  }
  const failures = []
  let i = 0
  for (const c of cases) {
    i++
    const u = `${runId}x${i}`
    const name = c.name.replaceAll('{u}', u)
    if (c.seed) {
      await seed({ ...c.seed, target: name }, u)
    }
    // A fresh connection per case: a client keeps a refused write in its local copy of
    // the record, which would colour the next case on the same record.
    const [actor] = await loginTapped(c.user)
    const got = await perform(actor, c, name)
    actor.close()
    const expected = TARGET === 'deepstream' && c.deepstream ? c.deepstream : c.expect
    if (got !== expected) failures.push(`#${i} ${c.user} ${c.op} ${c.name}${c.path ? ` (${c.path})` : ''} ${JSON.stringify(c.value ?? null)}: expected ${expected}, got ${got}`)
  }
  assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases differ`)
})

/** Logs in with the message tap of lib/client.mjs (client.received). */
async function loginTapped (user) {
  const client = await connect(server, { authData: { username: user, password: 'password' } }).catch(() => null)
  if (client) return [client, true]
  return [null, false]
}
