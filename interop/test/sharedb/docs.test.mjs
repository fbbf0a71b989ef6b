// ShareDB documents with the real `sharedb` 7 client: handshake, create/fetch/subscribe, every json0
// component, delete and re-create, concurrent editing, ops submitted while behind, ops from a
// version, snapshots at a version / time, bulk subscribe. Every test runs first against the
// reference ShareDB 7 server (run.sh sharedb-peer), then against recordsync.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  T, WAIT, JSON0_URI, useShareDB, uniqCollection, uniqId, cb, cbError, fetchDoc, subscribeDoc, createDoc, submitOp,
  delDoc, created, docEvents, serverSnapshot, plain, receivedOf, assertNoErrors, waitFor, sleep, json0
} from '../../lib/sharedb.mjs'

const sdb = useShareDB()

test('handshake: init then hs, protocol 1.2, json0 default type, a string src that stays across reconnects', T, async () => {
  const a = await sdb.one()
  assert.equal(typeof a.id, 'string')
  assert.ok(a.id.length > 0)
  const init = a.received.find((m) => m.a === 'init')
  assert.ok(init, 'server sent init')
  assert.deepEqual({ ...init, id: 'X' }, { a: 'init', protocol: 1, protocolMinor: 2, id: 'X', type: JSON0_URI })
  // the client sends hs on open and again on init (both null the first time); each is answered
  const hsSent = a.sent.filter((m) => m.a === 'hs')
  assert.ok(hsSent.length >= 1)
  for (const m of hsSent) assert.deepEqual(m, { a: 'hs', id: null, protocol: 1, protocolMinor: 2 })
  await waitFor(() => a.received.filter((m) => m.a === 'hs').length === hsSent.length, WAIT, 'an hs reply to each hs')
  for (const hs of a.received.filter((m) => m.a === 'hs')) {
    assert.deepEqual(hs, { a: 'hs', protocol: 1, protocolMinor: 2, id: a.id, type: JSON0_URI })
  }

  // a second connection gets another src
  const b = await sdb.one()
  assert.notEqual(b.id, a.id)

  // reconnect: the client sends its src in hs and the server keeps it
  const src = a.id
  const sentBefore = a.sent.length
  const recvBefore = a.received.length
  await a.reconnect()
  const hs2 = a.sent.slice(sentBefore).filter((m) => m.a === 'hs')
  assert.ok(hs2.length >= 1)
  for (const m of hs2) assert.deepEqual(m, { a: 'hs', id: src, protocol: 1, protocolMinor: 2 })
  assert.equal(a.id, src)
  const init2 = a.received.slice(recvBefore).find((m) => m.a === 'init')
  assert.ok(init2, 'init on the new socket')
  for (const m of a.received.slice(recvBefore).filter((m) => m.a === 'hs')) assert.equal(m.id, src)

  // ping
  a.ping()
  await waitFor(() => a.received.some((m) => m.a === 'pp'), WAIT, 'pp reply')
  assert.deepEqual(a.received.find((m) => m.a === 'pp'), { a: 'pp' })
  assertNoErrors(a, b)
})

test('a never-created doc is version 0 with type null; create makes v1, seen by fetch and subscribe of others', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const da = a.get(c, id)
  await fetchDoc(da)
  assert.equal(da.version, 0)
  assert.equal(da.type, null)
  assert.equal(da.data, undefined)
  const f = receivedOf(a, 'f', { c, d: id })[0]
  assert.deepEqual(f, { a: 'f', c, d: id, data: { v: 0, type: null } })

  await createDoc(da, { title: 'hello', n: 1, tags: ['x'] })
  assert.equal(da.version, 1)
  assert.equal(da.type.uri, JSON0_URI)
  const ack = receivedOf(a, 'op', { c, d: id }).pop()
  const sentCreate = a.sent.find((m) => m.a === 'op' && m.create)
  assert.deepEqual(sentCreate.create, { type: JSON0_URI, data: { title: 'hello', n: 1, tags: ['x'] } })
  assert.equal(sentCreate.v, 0)
  assert.deepEqual(ack, { a: 'op', c, d: id, src: a.id, seq: sentCreate.seq, v: 0 })

  const db = b.get(c, id)
  await fetchDoc(db)
  assert.equal(db.version, 1)
  assert.deepEqual(plain(db.data), { title: 'hello', n: 1, tags: ['x'] })
  // json0 is the default type: the fetch reply leaves `type` out
  const fb = receivedOf(b, 'f', { c, d: id })[0]
  assert.deepEqual(fb, { a: 'f', c, d: id, data: { v: 1, data: { title: 'hello', n: 1, tags: ['x'] } } })

  const b2 = await sdb.one()
  const ds = b2.get(c, id)
  await subscribeDoc(ds)
  assert.equal(ds.subscribed, true)
  assert.equal(ds.version, 1)
  assert.deepEqual(receivedOf(b2, 's', { c, d: id })[0], { a: 's', c, d: id, data: { v: 1, data: { title: 'hello', n: 1, tags: ['x'] } } })
  assertNoErrors(a, b, b2)
})

test('subscribe: a subscriber gets each op (src, seq, v) in version order; the submitter only its ack', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const da = await created(a, c, id, { n: 0 })
  const db = b.get(c, id)
  await subscribeDoc(db)
  const ev = docEvents(db)
  // (awaited one by one: the client composes ops queued behind an inflight one into one op)
  for (let i = 1; i <= 5; i++) await submitOp(da, [{ p: ['n'], na: i }])
  await ev.waitOps(5)
  await waitFor(() => db.version === 6, WAIT, () => `B at v6 (is ${db.version})`)
  assert.deepEqual(plain(db.data), { n: 15 })
  assert.deepEqual(ev.remoteOps().map((o) => o.op), [1, 2, 3, 4, 5].map((i) => [{ p: ['n'], na: i }]))
  const opsB = receivedOf(b, 'op', { c, d: id })
  assert.deepEqual(opsB.map((m) => m.v), [1, 2, 3, 4, 5])
  for (const m of opsB) assert.equal(m.src, a.id)
  const seqs = opsB.map((m) => m.seq)
  for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1)
  // A never gets its own ops back as broadcasts: only acks (no `op` field)
  const opsA = receivedOf(a, 'op', { c, d: id })
  assert.ok(opsA.every((m) => !('op' in m) && !m.create && !m.del), `A got ${JSON.stringify(opsA)}`)
  assert.deepEqual(await serverSnapshot(c, id), { v: 6, type: JSON0_URI, data: { n: 15 } })

  // unsubscribe: no more ops
  await cb((done) => db.unsubscribe(done), 'unsubscribe')
  assert.deepEqual(receivedOf(b, 'u', { c, d: id }), [{ a: 'u', c, d: id }])
  await submitOp(da, [{ p: ['n'], na: 100 }])
  await sleep(300)
  assert.equal(receivedOf(b, 'op', { c, d: id }).length, 5)
  assert.equal(db.version, 6)
  assertNoErrors(a, b)
})

/** Applies `op` through A, checks A, subscriber B and the server agree on `expect`. */
async function step (a, db, da, op, expect) {
  const before = db.version
  await submitOp(da, op)
  await waitFor(() => db.version === before + 1, WAIT, () => `B at v${before + 1} after ${JSON.stringify(op)} (is ${db.version})`)
  assert.deepEqual(plain(da.data), expect, `A after ${JSON.stringify(op)}`)
  assert.deepEqual(plain(db.data), expect, `B after ${JSON.stringify(op)}`)
  assert.deepEqual(await serverSnapshot(da.collection, da.id), { v: da.version, type: JSON0_URI, data: expect }, `server after ${JSON.stringify(op)}`)
}

test('every json0 component: oi od (replace) li ld (replace) lm na si sd, nested paths', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const da = await created(a, c, id, { obj: { k: 1 }, list: [1, 2, 3], n: 5, s: 'hello', deep: { a: [{ b: { c: 'x' } }] } })
  const db = b.get(c, id)
  await subscribeDoc(db)
  let d = plain(da.data)
  const go = async (op, mutate) => { mutate(d); await step(a, db, da, op, d) }
  await go([{ p: ['obj', 'new'], oi: { x: [1] } }], (d) => { d.obj.new = { x: [1] } })
  await go([{ p: ['obj', 'k'], od: 1, oi: 'replaced' }], (d) => { d.obj.k = 'replaced' })
  await go([{ p: ['obj', 'new'], od: { x: [1] } }], (d) => { delete d.obj.new })
  await go([{ p: ['top'], oi: null }], (d) => { d.top = null })
  await go([{ p: ['list', 1], li: 'ins' }], (d) => { d.list.splice(1, 0, 'ins') })
  await go([{ p: ['list', 4], li: { at: 'end' } }], (d) => { d.list.push({ at: 'end' }) })
  await go([{ p: ['list', 0], ld: 1 }], (d) => { d.list.splice(0, 1) })
  await go([{ p: ['list', 0], ld: 'ins', li: 'rep' }], (d) => { d.list[0] = 'rep' })
  await go([{ p: ['list', 0], lm: 2 }], (d) => { const [x] = d.list.splice(0, 1); d.list.splice(2, 0, x) })
  await go([{ p: ['list', 3], lm: 0 }], (d) => { const [x] = d.list.splice(3, 1); d.list.splice(0, 0, x) })
  await go([{ p: ['n'], na: 10 }], (d) => { d.n += 10 })
  await go([{ p: ['n'], na: -2.5 }], (d) => { d.n -= 2.5 })
  await go([{ p: ['s', 5], si: ' world' }], (d) => { d.s += ' world' })
  await go([{ p: ['s', 0], sd: 'hello ' }], (d) => { d.s = 'world' })
  await go([{ p: ['deep', 'a', 0, 'b', 'c', 1], si: 'yz' }], (d) => { d.deep.a[0].b.c = 'xyz' })
  await go([{ p: ['deep', 'a', 0, 'b', 'n'], oi: 1 }, { p: ['deep', 'a', 0, 'b', 'n'], na: 2 }, { p: ['deep', 'a', 1], li: [] }],
    (d) => { d.deep.a[0].b.n = 3; d.deep.a.push([]) })
  await go([{ p: ['deep', 'a', 1, 0], li: 'in nested list' }], (d) => { d.deep.a[1].push('in nested list') })
  await go([{ p: ['deep'], od: d.deep }], (d) => { delete d.deep })
  // the subscriber saw each op exactly as submitted
  const ops = receivedOf(b, 'op', { c, d: id })
  assert.equal(ops.length, 18)
  assert.deepEqual(ops[0].op, [{ p: ['obj', 'new'], oi: { x: [1] } }])
  assertNoErrors(a, b)
})

test('string ops count UTF-16 code units: non-BMP characters are two units', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const da = await created(a, c, id, { s: 'a😀b', t: '' })
  const db = b.get(c, id)
  await subscribeDoc(db)
  await step(a, db, da, [{ p: ['s', 3], si: 'X' }], { s: 'a😀Xb', t: '' })
  await step(a, db, da, [{ p: ['s', 1], sd: '😀' }], { s: 'aXb', t: '' })
  await step(a, db, da, [{ p: ['s', 1], si: '𝄞é' }], { s: 'a𝄞éXb', t: '' })
  await step(a, db, da, [{ p: ['s', 3], sd: 'éX' }], { s: 'a𝄞b', t: '' })
  await step(a, db, da, [{ p: ['t', 0], si: '👍🏽中' }], { s: 'a𝄞b', t: '👍🏽中' })
  await step(a, db, da, [{ p: ['t', 4], si: '|' }], { s: 'a𝄞b', t: '👍🏽|中' })
  assertNoErrors(a, b)
})

test('json0 subtype component (t: text0): insert and delete inside a string', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const da = await created(a, c, id, { s: 'hello' })
  const db = b.get(c, id)
  await subscribeDoc(db)
  await step(a, db, da, [{ p: ['s'], t: 'text0', o: [{ p: 5, i: ' world' }] }], { s: 'hello world' })
  await step(a, db, da, [{ p: ['s'], t: 'text0', o: [{ p: 0, d: 'hello ' }, { p: 0, i: '😀' }] }], { s: '😀world' })
  assert.deepEqual(receivedOf(b, 'op', { c, d: id })[0].op, [{ p: ['s'], t: 'text0', o: [{ p: 5, i: ' world' }] }])
  assertNoErrors(a, b)
})

test('del keeps the version going (type null), subscribers get del; re-create continues the version; history has all four kinds', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const da = await created(a, c, id, { v: 1 })
  await submitOp(da, [{ p: ['v'], na: 1 }])
  const db = b.get(c, id)
  await subscribeDoc(db)
  const ev = docEvents(db)
  await delDoc(da)
  assert.equal(da.version, 3)
  assert.equal(da.type, null)
  assert.equal(da.data, undefined)
  await waitFor(() => ev.dels.length === 1, WAIT, 'B del event')
  assert.deepEqual(plain(ev.dels[0]), { v: 2 })
  assert.equal(db.version, 3)
  assert.equal(db.type, null)
  const delMsg = receivedOf(b, 'op', { c, d: id }).find((m) => m.del)
  assert.deepEqual(delMsg, { a: 'op', c, d: id, v: 2, src: a.id, seq: delMsg.seq, del: true })
  assert.deepEqual(await serverSnapshot(c, id), { v: 3, type: null, data: undefined })

  // an op on the deleted doc is refused by the client itself; a re-create continues at v4
  await createDoc(da, { again: true })
  assert.equal(da.version, 4)
  await waitFor(() => ev.creates === 1, WAIT, 'B create event')
  assert.equal(db.version, 4)
  assert.deepEqual(plain(db.data), { again: true })
  assert.deepEqual(await serverSnapshot(c, id), { v: 4, type: JSON0_URI, data: { again: true } })

  // the whole history, as ops from version 0
  const raw = await sdb.raw()
  const from = raw.received.length
  await raw.request({ a: 'f', c, d: id, v: 0 }, (m) => m.a === 'f')
  const ops = raw.received.slice(from).filter((m) => m.a === 'op')
  assert.deepEqual(ops.map((m) => m.v), [0, 1, 2, 3])
  assert.deepEqual(ops[0].create, { type: JSON0_URI, data: { v: 1 } })
  assert.deepEqual(ops[1].op, [{ p: ['v'], na: 1 }])
  assert.equal(ops[2].del, true)
  assert.deepEqual(ops[3].create, { type: JSON0_URI, data: { again: true } })
  for (const m of ops) assert.equal(m.src, a.id)
  assert.deepEqual(raw.received.slice(from).pop(), { a: 'f', c, d: id })
  assertNoErrors(a, b)
})

test('two clients editing concurrently converge (list inserts, string inserts, counters)', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  await created(a, c, id, { list: [], s: '', n: 0 })
  const da = a.get(c, id)
  await subscribeDoc(da)
  const db = b.get(c, id)
  await subscribeDoc(db)
  for (let i = 0; i < 15; i++) {
    da.submitOp([{ p: ['list', 0], li: `a${i}` }, { p: ['s', 0], si: 'a' }, { p: ['n'], na: 1 }])
    db.submitOp([{ p: ['list', db.data.list.length], li: `b${i}` }, { p: ['s', db.data.s.length], si: 'b' }, { p: ['n'], na: 10 }])
    if (i % 5 === 0) await sleep(5)
  }
  await cb((done) => da.whenNothingPending(done), 'A nothing pending')
  await cb((done) => db.whenNothingPending(done), 'B nothing pending')
  const server = await serverSnapshot(c, id)
  await waitFor(() => da.version === server.v && db.version === server.v, WAIT, () => `A ${da.version}, B ${db.version}, server ${server.v}`)
  assert.deepEqual(plain(da.data), server.data)
  assert.deepEqual(plain(db.data), server.data)
  assert.equal(server.data.n, 165)
  assert.equal(server.data.list.length, 30)
  assert.equal(server.data.s.length, 30)
  assert.deepEqual([...server.data.s].sort().join(''), 'a'.repeat(15) + 'b'.repeat(15))
  assert.deepEqual(server.data.list.filter((x) => x.startsWith('a')), Array.from({ length: 15 }, (_, i) => `a${14 - i}`))
  assert.deepEqual(server.data.list.filter((x) => x.startsWith('b')), Array.from({ length: 15 }, (_, i) => `b${i}`))
  assertNoErrors(a, b)
})

test('an op submitted while behind is transformed against the ops it missed; the submitter gets them before its ack', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const da = await created(a, c, id, { list: ['x'], s: 'abc' })
  await subscribeDoc(da)
  const ev = docEvents(da)
  const db = b.get(c, id)
  await fetchDoc(db) // B holds v1 and is not subscribed: it will not hear A's ops
  await submitOp(da, [{ p: ['list', 0], li: 'a' }])
  await submitOp(da, [{ p: ['list', 0], li: 'b' }, { p: ['s', 0], si: 'XY' }])
  assert.equal(da.version, 3)
  assert.equal(db.version, 1)
  const from = b.received.length
  await submitOp(db, [{ p: ['list', 1], li: 'y' }, { p: ['s', 3], si: '!' }])
  // B got the two ops it missed (v1, v2), then the ack at v3
  const after = b.received.slice(from).filter((m) => m.a === 'op')
  assert.deepEqual(after.map((m) => [m.v, 'op' in m]), [[1, true], [2, true], [3, false]])
  assert.deepEqual(after[2], { a: 'op', c, d: id, src: b.id, seq: after[2].seq, v: 3 })
  assert.equal(db.version, 4)
  const expect = { list: ['b', 'a', 'x', 'y'], s: 'XYabc!' }
  assert.deepEqual(plain(db.data), expect)
  // A receives B's op transformed
  await ev.waitOps(1)
  assert.deepEqual(ev.remoteOps()[0].op, [{ p: ['list', 3], li: 'y' }, { p: ['s', 5], si: '!' }])
  assert.deepEqual(plain(da.data), expect)
  assert.deepEqual(await serverSnapshot(c, id), { v: 4, type: JSON0_URI, data: expect })
  // the transform is json0's (left side for the submitted op)
  const t = json0.transform([{ p: ['list', 1], li: 'y' }], [{ p: ['list', 0], li: 'a' }], 'left')
  assert.deepEqual(t, [{ p: ['list', 2], li: 'y' }])
  assertNoErrors(a, b)
})

test('fetch from a version after a disconnect streams the missed ops; a subscriber resubscribes from its version', T, async () => {
  const [a, b, s] = await sdb.connect(3)
  const c = uniqCollection()
  const id = uniqId()
  const da = await created(a, c, id, { n: 0 })
  const db = b.get(c, id)
  await fetchDoc(db)
  const ds = s.get(c, id)
  await subscribeDoc(ds)
  b.close()
  s.close()
  for (let i = 1; i <= 3; i++) await submitOp(da, [{ p: ['n'], na: i }])
  await b.reconnect()
  const fromB = b.received.length
  const sentFrom = b.sent.length
  await fetchDoc(db)
  assert.deepEqual(b.sent.slice(sentFrom).filter((m) => m.a === 'f'), [{ a: 'f', c, d: id, v: 1 }])
  const got = b.received.slice(fromB)
  assert.deepEqual(got.filter((m) => m.a === 'op').map((m) => [m.v, m.op]), [[1, [{ p: ['n'], na: 1 }]], [2, [{ p: ['n'], na: 2 }]], [3, [{ p: ['n'], na: 3 }]]])
  assert.deepEqual(got.filter((m) => m.a === 'f'), [{ a: 'f', c, d: id }])
  assert.equal(db.version, 4)
  assert.deepEqual(plain(db.data), { n: 6 })

  const sentS = s.sent.length
  await s.reconnect()
  await waitFor(() => ds.version === 4, WAIT, () => `resubscribed doc at v4 (is ${ds.version})`)
  assert.deepEqual(s.sent.slice(sentS).filter((m) => m.a === 's'), [{ a: 's', c, d: id, v: 1 }])
  // ops from v1 streamed, then the bare reply
  await waitFor(() => s.received.some((m) => m.a === 's' && m.d === id && !('data' in m)), WAIT, 's reply')
  const resub = s.received.slice(s.received.findLastIndex((m) => m.a === 'init'))
  assert.deepEqual(resub.filter((m) => m.d === id).map((m) => m.a === 'op' ? ['op', m.v] : [m.a]), [['op', 1], ['op', 2], ['op', 3], ['s']])
  assert.deepEqual(resub.find((m) => m.a === 's'), { a: 's', c, d: id })
  assert.deepEqual(plain(ds.data), { n: 6 })
  const ev = docEvents(ds)
  await submitOp(da, [{ p: ['n'], na: 4 }])
  await ev.waitOps(1)
  assert.deepEqual(plain(ds.data), { n: 10 })
  assertNoErrors(a, b, s)
})

test('fetchSnapshot at each version, and fetchSnapshotByTimestamp', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const t0 = Date.now()
  await sleep(30)
  const da = await created(a, c, id, { n: 0 })
  await sleep(30)
  const t1 = Date.now()
  await sleep(30)
  await submitOp(da, [{ p: ['n'], na: 1 }])
  await submitOp(da, [{ p: ['s'], oi: 'x' }])
  await sleep(30)
  const t3 = Date.now()
  await sleep(30)
  await delDoc(da)
  const fetchSnap = (v) => cb((done) => b.fetchSnapshot(c, id, v, done), `fetchSnapshot v${v}`)
  const snap = (s) => ({ id: s.id, v: s.v, type: s.type, data: plain(s.data) })
  assert.deepEqual(snap(await fetchSnap(0)), { id, v: 0, type: null, data: undefined })
  assert.deepEqual(snap(await fetchSnap(1)), { id, v: 1, type: JSON0_URI, data: { n: 0 } })
  assert.deepEqual(snap(await fetchSnap(2)), { id, v: 2, type: JSON0_URI, data: { n: 1 } })
  assert.deepEqual(snap(await fetchSnap(3)), { id, v: 3, type: JSON0_URI, data: { n: 1, s: 'x' } })
  assert.deepEqual(snap(await fetchSnap(4)), { id, v: 4, type: null, data: undefined })
  assert.deepEqual(snap(await fetchSnap(null)), { id, v: 4, type: null, data: undefined })
  // a version past the end is an error (ShareDB's backend: ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT;
  // its in-memory database fails earlier, with a plain 'Missing ops' error that has no code)
  const past = await cbError((done) => b.fetchSnapshot(c, id, 99, done), 'fetchSnapshot v99')
  assert.ok(past.code === 'ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT' || past.message === 'Missing ops', `got ${past.code}: ${past.message}`)
  const nf = b.received.filter((m) => m.a === 'nf')
  assert.equal(nf.length, 7)
  assert.ok(nf[6].error, 'the past-the-end reply carries error')
  assert.deepEqual(Object.keys(nf[1]).sort(), ['a', 'data', 'id', 'm', 'type', 'v'])
  assert.equal(typeof nf[1].id, 'number')

  const byTs = (ts) => cb((done) => b.fetchSnapshotByTimestamp(c, id, ts, done), `fetchSnapshotByTimestamp ${ts}`)
  assert.deepEqual(snap(await byTs(t0)), { id, v: 0, type: null, data: undefined })
  assert.deepEqual(snap(await byTs(t1)), { id, v: 1, type: JSON0_URI, data: { n: 0 } })
  assert.deepEqual(snap(await byTs(t3)), { id, v: 3, type: JSON0_URI, data: { n: 1, s: 'x' } })
  assert.deepEqual(snap(await byTs(Date.now() + 1000)), { id, v: 4, type: null, data: undefined })
  assert.deepEqual(snap(await byTs(null)), { id, v: 4, type: null, data: undefined })
  const nt = b.sent.filter((m) => m.a === 'nt')
  assert.deepEqual(Object.keys(nt[0]).sort(), ['a', 'c', 'd', 'id', 'ts'])
  // a doc that never existed
  assert.deepEqual(snap(await cb((done) => b.fetchSnapshot(c, 'never', null, done))), { id: 'never', v: 0, type: null, data: undefined })
  assertNoErrors(a, b)
})

test('bulk: startBulk/endBulk sends one bs (ids) and one bf (version map); ops stream for the map form', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const ids = [uniqId(), uniqId(), uniqId()]
  const das = []
  for (const [i, id] of ids.entries()) das.push(await created(a, c, id, { i }))
  const missing = uniqId()

  const docs = [...ids, missing].map((id) => b.get(c, id))
  const sentFrom = b.sent.length
  b.startBulk()
  const subscribed = docs.map((d) => subscribeDoc(d))
  b.endBulk()
  await Promise.all(subscribed)
  const bs = b.sent.slice(sentFrom).filter((m) => m.a === 'bs' || m.a === 's')
  assert.deepEqual(bs, [{ a: 'bs', c, b: [...ids, missing] }])
  const reply = b.received.find((m) => m.a === 'bs')
  assert.deepEqual(reply, {
    a: 'bs',
    c,
    data: {
      [ids[0]]: { v: 1, data: { i: 0 } },
      [ids[1]]: { v: 1, data: { i: 1 } },
      [ids[2]]: { v: 1, data: { i: 2 } },
      [missing]: { v: 0, type: null }
    }
  })
  assert.deepEqual(docs.map((d) => d.version), [1, 1, 1, 0])

  // live
  const ev = docEvents(docs[1])
  await submitOp(das[1], [{ p: ['i'], na: 10 }])
  await ev.waitOps(1)
  assert.deepEqual(plain(docs[1].data), { i: 11 })

  // bulk fetch with known versions: the version-map form streams ops, then {a:'bf', c, b}
  const b2 = await sdb.one()
  const fdocs = ids.map((id) => b2.get(c, id))
  b2.startBulk()
  const fetched = fdocs.map((d) => fetchDoc(d))
  b2.endBulk()
  await Promise.all(fetched)
  assert.deepEqual(fdocs.map((d) => d.version), [1, 2, 1])
  await submitOp(das[0], [{ p: ['i'], na: 5 }])
  await submitOp(das[2], [{ p: ['i'], oi: 'z' }])
  const sentFrom2 = b2.sent.length
  const recvFrom2 = b2.received.length
  b2.startBulk()
  const refetched = fdocs.map((d) => fetchDoc(d))
  b2.endBulk()
  await Promise.all(refetched)
  assert.deepEqual(b2.sent.slice(sentFrom2), [{ a: 'bf', c, b: { [ids[0]]: 1, [ids[1]]: 2, [ids[2]]: 1 } }])
  const got = b2.received.slice(recvFrom2)
  assert.deepEqual(got.filter((m) => m.a === 'op').map((m) => [m.d, m.v]).sort(), [[ids[0], 1], [ids[2], 1]].sort())
  assert.deepEqual(got.filter((m) => m.a === 'bf'), [{ a: 'bf', c, b: { [ids[0]]: 1, [ids[1]]: 2, [ids[2]]: 1 } }])
  assert.deepEqual(fdocs.map((d) => plain(d.data)), [{ i: 5 }, { i: 11 }, { i: 'z' }])

  // bulk unsubscribe
  const sentFrom3 = b.sent.length
  b.startBulk()
  const unsubscribed = docs.map((d) => cb((done) => d.unsubscribe(done)))
  b.endBulk()
  await Promise.all(unsubscribed)
  assert.deepEqual(b.sent.slice(sentFrom3), [{ a: 'bu', c, b: [...ids, missing] }])
  await waitFor(() => b.received.some((m) => m.a === 'bu'), WAIT, 'bu reply')
  assert.deepEqual(b.received.find((m) => m.a === 'bu'), { a: 'bu', c, b: [...ids, missing] })
  assertNoErrors(a, b, b2)
})
