// ShareDB errors as the real server reports them: codes and messages on the wire (a reply is the
// request echoed with `error: {code, message}`) and as the real client surfaces them.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  T, WAIT, JSON0_URI, useShareDB, uniqCollection, uniqId, cb, cbError, fetchDoc, subscribeDoc, createDoc, submitOp,
  delDoc, created, serverSnapshot, plain, receivedOf, waitFor, sleep
} from '../../lib/sharedb.mjs'

const sdb = useShareDB()

const isReplyTo = (seq) => (m) => m.a === 'op' && m.seq === seq

test('create twice (from two clients) fails with ERR_DOC_ALREADY_CREATED; the loser ends up with the winner\'s doc', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const da = a.get(c, id)
  const db = b.get(c, id)
  await fetchDoc(db) // B knows the doc as not created
  await createDoc(da, { by: 'a' })
  const err = await cbError((done) => db.create({ by: 'b' }, done), 'B create')
  assert.equal(err.code, 'ERR_DOC_ALREADY_CREATED')
  const reply = receivedOf(b, 'op', { c, d: id }).find((m) => m.error)
  const sent = b.sent.find((m) => m.a === 'op' && m.create)
  assert.deepEqual(reply, { ...sent, error: { code: 'ERR_DOC_ALREADY_CREATED', message: 'Document was created remotely' } })
  // the client rolls back by fetching the doc
  await waitFor(() => db.version === 1 && db.data && db.data.by === 'a', WAIT, () => `B rolled back to A's doc (v${db.version} ${JSON.stringify(db.data)})`)
  assert.deepEqual(await serverSnapshot(c, id), { v: 1, type: JSON0_URI, data: { by: 'a' } })

  // the same through the raw wire: create at v0 and at the current version both fail
  const raw = await sdb.raw()
  // (behind: transformed against the create it missed; at the current version, or with no v: refused on apply)
  const messages = { 0: 'Document was created remotely', 1: 'Document already exists', none: 'Invalid op submitted. Document already created' }
  let seq = 10
  for (const v of [0, 1, 'none']) {
    const m = { a: 'op', c, d: id, src: raw.src, seq: ++seq, create: { type: JSON0_URI, data: {} } }
    if (v !== 'none') m.v = v
    const r = await raw.request(m, isReplyTo(seq))
    assert.deepEqual(r.error, { code: 'ERR_DOC_ALREADY_CREATED', message: messages[v] }, `create at v ${v}: ${JSON.stringify(r)}`)
  }
  assert.deepEqual(await serverSnapshot(c, id), { v: 1, type: JSON0_URI, data: { by: 'a' } })
})

test('an op on a doc that does not exist: ERR_DOC_DOES_NOT_EXIST (server), refused by the client before sending; a del is not refused', T, async () => {
  const a = await sdb.one()
  const c = uniqCollection()
  const id = uniqId()
  const raw = await sdb.raw()
  const r = await raw.request({ a: 'op', c, d: id, v: 0, src: raw.src, seq: 1, op: [{ p: ['x'], oi: 1 }] }, isReplyTo(1))
  assert.deepEqual(r, { a: 'op', c, d: id, v: 0, src: raw.src, seq: 1, op: [{ p: ['x'], oi: 1 }], error: { code: 'ERR_DOC_DOES_NOT_EXIST', message: 'Document does not exist' } })
  assert.deepEqual(await serverSnapshot(c, id), { v: 0, type: null, data: undefined })
  // ShareDB does not check that a deleted doc existed: a del of a never-created doc is
  // acknowledged and makes a version (v1, type still null)
  const del = await raw.request({ a: 'op', c, d: id, v: 0, src: raw.src, seq: 2, del: true }, isReplyTo(2))
  assert.deepEqual(del, { a: 'op', c, d: id, src: raw.src, seq: 2, v: 0 })
  assert.deepEqual(await serverSnapshot(c, id), { v: 1, type: null, data: undefined })

  const doc = a.get(c, id)
  await fetchDoc(doc)
  const sentBefore = a.sent.length
  const err = await cbError((done) => doc.submitOp([{ p: ['x'], oi: 1 }], done), 'submitOp on missing doc')
  assert.equal(err.code, 'ERR_DOC_DOES_NOT_EXIST')
  const err2 = await cbError((done) => doc.del(done), 'del on missing doc')
  assert.equal(err2.code, 'ERR_DOC_DOES_NOT_EXIST')
  assert.equal(a.sent.slice(sentBefore).filter((m) => m.a === 'op').length, 0)
})

test('an op from a client that missed a delete fails with ERR_DOC_WAS_DELETED; the client inverts it; the doc stays deleted', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const da = await created(a, c, id, { n: 1 })
  const db = b.get(c, id)
  await fetchDoc(db) // v1, not subscribed
  await delDoc(da)
  const err = await cbError((done) => db.submitOp([{ p: ['n'], na: 1 }], done), 'op after a delete it missed')
  assert.equal(err.code, 'ERR_DOC_WAS_DELETED')
  assert.equal(err.message, 'Document was deleted')
  // json0 ops invert: the client undoes its op locally and stays at its version
  assert.equal(db.version, 1)
  assert.deepEqual(plain(db.data), { n: 1 })
  await fetchDoc(db)
  assert.equal(db.version, 2)
  assert.equal(db.type, null)
  assert.deepEqual(await serverSnapshot(c, id), { v: 2, type: null, data: undefined })
})

test('badly formed ops: not a list, a component without a path, an unknown instruction, one that does not apply', T, async () => {
  const a = await sdb.one()
  const c = uniqCollection()
  const id = uniqId()
  await created(a, c, id, { n: 1, s: 'abc', l: [1] })
  const raw = await sdb.raw()
  let seq = 0
  const send = (op, v = 1) => { seq++; return raw.request({ a: 'op', c, d: id, v, src: raw.src, seq, op }, isReplyTo(seq)) }
  const cases = [
    [{ p: ['n'], na: 1 }, 'ERR_OT_OP_BADLY_FORMED', 'json0 op must be an array'],
    [[{ na: 1 }], 'ERR_OT_OP_BADLY_FORMED', 'Missing path'],
    [[{ p: ['n'], zz: 1 }], 'ERR_OT_OP_NOT_APPLIED', 'invalid / missing instruction in op'],
    [[{ p: ['s'], na: 1 }], 'ERR_OT_OP_NOT_APPLIED', 'Referenced element not a number'],
    [[{ p: ['missing', 'deeper'], oi: 1 }], 'ERR_OT_OP_NOT_APPLIED', 'Referenced element not an object (it was undefined)']
  ]
  for (const [op, code, message] of cases) {
    const r = await send(op)
    assert.ok(r.error, `no error for ${JSON.stringify(op)}: ${JSON.stringify(r)}`)
    assert.equal(r.error.code, code, `${JSON.stringify(op)} -> ${JSON.stringify(r.error)}`)
    if (message) assert.equal(r.error.message, message)
    assert.deepEqual(r.op, op, 'the error reply echoes the request')
  }
  assert.deepEqual(await serverSnapshot(c, id), { v: 1, type: JSON0_URI, data: { n: 1, s: 'abc', l: [1] } })
  // the connection still works
  const ok = await send([{ p: ['n'], na: 1 }])
  assert.deepEqual(ok, { a: 'op', c, d: id, src: raw.src, seq, v: 1 })
  assert.deepEqual(await serverSnapshot(c, id), { v: 2, type: JSON0_URI, data: { n: 2, s: 'abc', l: [1] } })
})

test('unknown type: the client refuses it locally (ERR_DOC_TYPE_NOT_RECOGNIZED); the server answers ERR_OT_OP_BADLY_FORMED', T, async () => {
  const a = await sdb.one()
  const c = uniqCollection()
  const id = uniqId()
  const doc = a.get(c, id)
  const err = await cbError((done) => doc.create({}, 'http://example.com/types/unknown', done), 'create with an unknown type')
  assert.equal(err.code, 'ERR_DOC_TYPE_NOT_RECOGNIZED')
  const raw = await sdb.raw()
  const r = await raw.request({ a: 'op', c, d: id, v: 0, src: raw.src, seq: 1, create: { type: 'http://example.com/types/unknown', data: {} } }, isReplyTo(1))
  // the server drops a type it does not know before checking the op, so it answers 'Missing create
  // type', and the echoed request has no `type` any more
  assert.deepEqual(r, { a: 'op', c, d: id, v: 0, src: raw.src, seq: 1, create: { data: {} }, error: { code: 'ERR_OT_OP_BADLY_FORMED', message: 'Missing create type' } })
  const text = await raw.request({ a: 'op', c, d: id, v: 0, src: raw.src, seq: 4, create: { type: 'text', data: 'abc' } }, isReplyTo(4))
  assert.deepEqual(text.error, { code: 'ERR_OT_OP_BADLY_FORMED', message: 'Missing create type' }, 'only json0 is registered')
  const missing = await raw.request({ a: 'op', c, d: id, v: 0, src: raw.src, seq: 2, create: { data: {} } }, isReplyTo(2))
  assert.deepEqual(missing.error, { code: 'ERR_OT_OP_BADLY_FORMED', message: 'Missing create type' })
  // the short name 'json0' is accepted, and the history holds the URI
  const short = await raw.request({ a: 'op', c, d: id, v: 0, src: raw.src, seq: 3, create: { type: 'json0', data: { ok: 1 } } }, isReplyTo(3))
  assert.deepEqual(short, { a: 'op', c, d: id, src: raw.src, seq: 3, v: 0 })
  assert.deepEqual(await serverSnapshot(c, id), { v: 1, type: JSON0_URI, data: { ok: 1 } })
  const from = raw.received.length
  await raw.request({ a: 'f', c, d: id, v: 0 }, (m) => m.a === 'f')
  assert.deepEqual(raw.received.slice(from).find((m) => m.a === 'op').create, { type: JSON0_URI, data: { ok: 1 } })
})

test('an op from a version the doc has not reached: ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT', T, async () => {
  const a = await sdb.one()
  const c = uniqCollection()
  const id = uniqId()
  await created(a, c, id, { n: 1 })
  const raw = await sdb.raw()
  const r = await raw.request({ a: 'op', c, d: id, v: 5, src: raw.src, seq: 1, op: [{ p: ['n'], na: 1 }] }, isReplyTo(1))
  assert.deepEqual(r.error, { code: 'ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT', message: 'Invalid op submitted. Op version newer than current snapshot' })
  assert.deepEqual(await serverSnapshot(c, id), { v: 1, type: JSON0_URI, data: { n: 1 } })
})

test('a resubmitted op (same src and seq) is acknowledged again but applied once', T, async () => {
  const [a] = await sdb.connect(1)
  const c = uniqCollection()
  const id = uniqId()
  const da = await created(a, c, id, { n: 0 })
  await subscribeDoc(da)
  const raw = await sdb.raw()
  const op = { a: 'op', c, d: id, v: 1, src: raw.src, seq: 1, op: [{ p: ['n'], na: 5 }] }
  const first = await raw.request(op, isReplyTo(1))
  assert.deepEqual(first, { a: 'op', c, d: id, src: raw.src, seq: 1, v: 1 })
  await submitOp(da, [{ p: ['n'], na: 1 }]) // the doc moves on (v3)
  const from = raw.received.length
  raw.send(op)
  const again = await raw.next(isReplyTo(1), 'ack of the resubmission', from)
  assert.ok(!again.error, JSON.stringify(again))
  assert.equal(again.src, raw.src)
  assert.equal(again.seq, 1)
  assert.deepEqual(await serverSnapshot(c, id), { v: 3, type: JSON0_URI, data: { n: 6 } })
  // a resubmitted create is acknowledged the same way
  const id2 = uniqId()
  const create = { a: 'op', c, d: id2, v: 0, src: raw.src, seq: 2, create: { type: JSON0_URI, data: { x: 1 } } }
  assert.deepEqual(await raw.request(create, isReplyTo(2)), { a: 'op', c, d: id2, src: raw.src, seq: 2, v: 0 })
  const from2 = raw.received.length
  raw.send(create)
  assert.deepEqual(await raw.next(isReplyTo(2), 'ack of the resubmitted create', from2), { a: 'op', c, d: id2, src: raw.src, seq: 2, v: 0 })
  assert.deepEqual(await serverSnapshot(c, id2), { v: 1, type: JSON0_URI, data: { x: 1 } })
  // a create as a client sends it for a doc it never fetched: v null (and x: {}); resent, it is
  // acknowledged with the version it was applied at
  const id3 = uniqId()
  const create3 = { a: 'op', c, d: id3, v: null, seq: 3, x: {}, create: { type: JSON0_URI, data: { y: 1 } } }
  assert.deepEqual(await raw.request(create3, isReplyTo(3)), { a: 'op', c, d: id3, src: raw.src, seq: 3, v: 0 })
  const d3 = a.get(c, id3)
  await fetchDoc(d3)
  await submitOp(d3, [{ p: ['y'], na: 1 }]) // the doc moves on (v2) before the resend
  const from3 = raw.received.length
  raw.send({ ...create3, src: raw.src })
  assert.deepEqual(await raw.next(isReplyTo(3), 'ack of the resent v-null create', from3), { a: 'op', c, d: id3, src: raw.src, seq: 3, v: 0 })
  assert.deepEqual(await serverSnapshot(c, id3), { v: 2, type: JSON0_URI, data: { y: 2 } })
})

test('an empty op is acknowledged and still makes a version', T, async () => {
  const a = await sdb.one()
  const c = uniqCollection()
  const id = uniqId()
  await created(a, c, id, { n: 1 })
  const raw = await sdb.raw()
  const r = await raw.request({ a: 'op', c, d: id, v: 1, src: raw.src, seq: 1, op: [] }, isReplyTo(1))
  assert.deepEqual(r, { a: 'op', c, d: id, src: raw.src, seq: 1, v: 1 })
  assert.deepEqual(await serverSnapshot(c, id), { v: 2, type: JSON0_URI, data: { n: 1 } })
})

test('bad messages: unknown action, bad collection, bad version, bad query id (ERR_MESSAGE_BADLY_FORMED, request echoed)', T, async () => {
  const raw = await sdb.raw()
  const c = uniqCollection()
  const cases = [
    [{ a: 'zz', x: 1 }, 'Invalid or unknown message'],
    [{ a: 'f', c: 5, d: 'x' }, 'Invalid collection'],
    [{ a: 'f', c, d: 7 }, 'Invalid id'],
    [{ a: 'f', c, d: 'x', v: -1 }, 'Invalid version'],
    [{ a: 'qf', id: 'q', c, q: {} }, 'Missing query ID'],
    [{ a: 'bf', c, b: 'nope' }, 'Invalid bulk subscribe data']
  ]
  for (const [m, message] of cases) {
    const r = await raw.request(m, (x) => x.a === m.a && x.error)
    assert.deepEqual(r, { ...m, error: { code: 'ERR_MESSAGE_BADLY_FORMED', message } })
  }
  // still usable
  const r = await raw.request({ a: 'f', c, d: 'x' }, (x) => x.a === 'f' && !x.error)
  assert.deepEqual(r, { a: 'f', c, d: 'x', data: { v: 0, type: null } })
})

test('a frame that is not JSON closes the connection; the server keeps serving others', T, async () => {
  const raw = await sdb.raw()
  raw.send('this is not json')
  await waitFor(() => raw.closedInfo, WAIT, 'the server closes the socket')
  const other = await sdb.one()
  const doc = other.get(uniqCollection(), uniqId())
  await fetchDoc(doc)
  assert.equal(doc.version, 0)
})
