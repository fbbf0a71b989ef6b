// ShareDB presence with the real client (the reference server runs with `presence: true`):
// channel presence (submit, update, clear, late subscribers, cleared on disconnect) and document
// presence, which json0 (ot-json0 1.1.0, sharedb 7's default type) does not support.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  T, WAIT, useShareDB, uniqCollection, uniqId, cb, cbError, created, fetchDoc, subscribeDoc, submitOp,
  presenceOn, submitPresence, waitFor, sleep, assertNoErrors, plain
} from '../../lib/sharedb.mjs'

const sdb = useShareDB()
const channel = () => `ch-${uniqId()}`

test('channel presence: submit, update and clear reach subscribers with the sender\'s src; the sender does not get its own', T, async () => {
  const [a, b, c] = await sdb.connect(3)
  const ch = channel()
  const pa = await presenceOn(a, ch)
  const pb = await presenceOn(b, ch)
  const pc = await presenceOn(c, ch)
  const la = pa.create('cursor-a')
  assert.equal(la.presenceId, 'cursor-a')
  await submitPresence(la, { x: 1, y: 'a' })
  await pb.waitFor('cursor-a', { x: 1, y: 'a' })
  await pc.waitFor('cursor-a', { x: 1, y: 'a' })
  assert.deepEqual(plain(pb.remotePresences), { 'cursor-a': { x: 1, y: 'a' } })

  // the wire: the sender sends {a:'p', ch, id, p, pv}; others get it with src
  const sent = a.sent.find((m) => m.a === 'p')
  assert.deepEqual(sent, { a: 'p', ch, id: 'cursor-a', p: { x: 1, y: 'a' }, pv: sent.pv })
  assert.equal(typeof sent.pv, 'number')
  const got = b.received.find((m) => m.a === 'p')
  assert.deepEqual(got, { a: 'p', ch, src: a.id, id: 'cursor-a', p: { x: 1, y: 'a' }, pv: sent.pv })
  // the sender's ack echoes the presence
  const ack = a.received.find((m) => m.a === 'p')
  assert.deepEqual(ack, { a: 'p', ch, src: a.id, id: 'cursor-a', p: { x: 1, y: 'a' }, pv: sent.pv })
  assert.equal(pa.received.length, 0)

  await submitPresence(la, { x: 2 })
  await pb.waitFor('cursor-a', { x: 2 })
  // a second presence of B's own in the same channel
  const lb = pb.create('cursor-b')
  await submitPresence(lb, 'b-here')
  await pa.waitFor('cursor-b', 'b-here')
  await pc.waitFor('cursor-b', 'b-here')

  await submitPresence(la, null)
  await pb.waitFor('cursor-a', null)
  await pc.waitFor('cursor-a', null)
  assert.deepEqual(plain(pb.remotePresences), {})
  assert.deepEqual(plain(pc.remotePresences), { 'cursor-b': 'b-here' })
  assertNoErrors(a, b, c)
})

test('channel presence: a late subscriber gets the current values (the server asks the holders with pr)', T, async () => {
  const [a, b, late] = await sdb.connect(3)
  const ch = channel()
  const pa = await presenceOn(a, ch)
  const pb = await presenceOn(b, ch)
  const la = pa.create('pa')
  await submitPresence(la, { v: 1 })
  const lb = pb.create('pb')
  await submitPresence(lb, { v: 'first' })
  await submitPresence(lb, { v: 'second' })
  const cleared = pb.create('pb-cleared')
  await submitPresence(cleared, 'temp')
  await submitPresence(cleared, null)
  const pl = await presenceOn(late, ch)
  await pl.waitFor('pa', { v: 1 })
  await pl.waitFor('pb', { v: 'second' })
  await sleep(200)
  assert.deepEqual(plain(pl.remotePresences), { pa: { v: 1 }, pb: { v: 'second' } })
  // holders were asked to re-broadcast
  assert.ok(a.received.some((m) => m.a === 'pr' && m.ch === ch), 'a got pr')
  assert.deepEqual(a.received.find((m) => m.a === 'pr' && m.ch === ch), { a: 'pr', ch })
  // the subscribe reply
  const ps = late.received.find((m) => m.a === 'ps')
  const psSent = late.sent.find((m) => m.a === 'ps')
  assert.deepEqual(psSent, { a: 'ps', ch, seq: psSent.seq })
  assert.deepEqual(ps, { a: 'ps', ch, seq: psSent.seq })
  // an unsubscribed connection hears nothing more
  await cb((done) => pl.unsubscribe(done), 'presence unsubscribe')
  const pu = late.received.find((m) => m.a === 'pu')
  assert.deepEqual(pu, { a: 'pu', ch, seq: late.sent.find((m) => m.a === 'pu').seq })
  const n = pl.received.length
  await submitPresence(la, { v: 2 })
  await pb.waitFor('pa', { v: 2 })
  await sleep(200)
  assert.equal(pl.received.length, n)
  assertNoErrors(a, b, late)
})

test('channel presence: a subscribed connection\'s presences are cleared (null) for the others when it disconnects', T, async () => {
  const [a, b] = await sdb.connect(2)
  const ch = channel()
  const pa = await presenceOn(a, ch)
  const pb = await presenceOn(b, ch)
  await submitPresence(pa.create('one'), 1)
  await submitPresence(pa.create('two'), 2)
  await pb.waitFor('two', 2)
  a.close()
  await pb.waitFor('one', null)
  await pb.waitFor('two', null)
  assert.deepEqual(plain(pb.remotePresences), {})
  const nulls = b.received.filter((m) => m.a === 'p' && m.p === null)
  assert.deepEqual(nulls.map((m) => m.id).sort(), ['one', 'two'])
  for (const m of nulls) assert.equal(m.src, a.id)
  assertNoErrors(b)
})

test('channel presence: a connection that never subscribed to the channel can still submit; others receive it', T, async () => {
  const [a, b] = await sdb.connect(2)
  const ch = channel()
  const pa = await presenceOn(a, ch, { subscribe: false })
  const pb = await presenceOn(b, ch)
  await submitPresence(pa.create('ghost'), { here: true })
  await pb.waitFor('ghost', { here: true })
  assertNoErrors(a, b)
  // (ShareDB 7 clears a connection's presences on disconnect only in channels that connection is
  // subscribed to: this 'ghost' would stay. Not encoded here: recordsync may clear it.)
})

test('doc presence: json0 does not support presence (ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE from the server); a missing doc is refused by the client', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection()
  const id = uniqId()
  const doc = await created(a, c, id, { text: 'hello' })
  await subscribeDoc(doc)
  const db = b.get(c, id)
  await subscribeDoc(db)
  const pb = b.getDocPresence(c, id)
  const received = []
  pb.on('receive', (pid, value) => received.push({ pid, value }))
  await cb((done) => pb.subscribe(done), 'doc presence subscribe')

  const pa = a.getDocPresence(c, id)
  await cb((done) => pa.subscribe(done), 'doc presence subscribe (a)')
  const local = pa.create('cursor')
  const err = await cbError((done) => local.submit({ index: 1, length: 0 }, done), 'doc presence submit on json0')
  assert.equal(err.code, 'ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE')
  const reply = a.received.find((m) => m.a === 'p' && m.error)
  assert.deepEqual(reply.error, { code: 'ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE', message: `Type does not support presence: ${doc.type.uri}` })
  const sent = a.sent.find((m) => m.a === 'p')
  assert.deepEqual(sent, { a: 'p', ch: `${c}.${id}`, id: 'cursor', p: { index: 1, length: 0 }, pv: sent.pv, c, d: id, v: 1, t: doc.type.uri })
  await sleep(200)
  assert.deepEqual(received, [])

  // on a doc that was never created the client refuses before sending
  const missing = a.getDocPresence(c, uniqId())
  const err2 = await cbError((done) => missing.create('x').submit({ index: 0 }, done), 'doc presence on a missing doc')
  assert.equal(err2.code, 'ERR_DOC_DOES_NOT_EXIST')
})
