// Records: lifecycle, reads, writes, paths, acknowledgements, deletes, conflicts.
// Every test drives the server with at least two real @deepstream/client connections.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isDeepStrictEqual } from 'node:util'
import { useServer, plain, assertNoErrors, T, TARGET } from '../lib/suite.mjs'
import { rawClient, P } from '../lib/raw.mjs'
import { withTimeout, waitFor, recorder, nextEvent, uniq, sleep, receivedRecordMessages, RA } from '../lib/client.mjs'

const ctx = useServer()

async function ready (...records) {
  await withTimeout(Promise.all(records.map((r) => r.whenReady())), 4000, `records ready: ${records.map((r) => r.name)}`)
  return records
}

test('getRecord of a new record is {} at version 0 on both clients; each sees the other\'s writes', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const ra = a.record.getRecord(name)
  assert.equal(ra.name, name)
  await ready(ra)
  assert.equal(ra.isReady, true)
  assert.deepEqual(plain(ra.get()), {})
  assert.strictEqual(ra.version, 0)

  const rb = b.record.getRecord(name)
  await ready(rb)
  assert.deepEqual(plain(rb.get()), {})
  assert.strictEqual(rb.version, 0)

  const seenB = recorder('B subscription')
  const seenA = recorder('A subscription')
  rb.subscribe(seenB)
  ra.subscribe(seenA)
  ra.set({ greeting: 'hello', n: 1 })
  const [dataB] = await seenB.nth(1)
  assert.deepEqual(plain(dataB), { greeting: 'hello', n: 1 })
  assert.strictEqual(rb.version, 1)
  assert.strictEqual(ra.version, 1)

  rb.set('n', 2)
  await seenA.until((d) => d && d.n === 2)
  assert.deepEqual(plain(ra.get()), { greeting: 'hello', n: 2 })
  assert.strictEqual(ra.version, 2)
  assert.strictEqual(rb.version, 2)

  // subscribe with triggerNow fires at once with the current value
  const now = recorder('triggerNow')
  rb.subscribe(now, true)
  assert.equal(now.calls.length, 1)
  assert.deepEqual(plain(now.calls[0][0]), { greeting: 'hello', n: 2 })
  assertNoErrors(a, b)
})

test('getRecord of an existing record loads its data and version from the server', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const ra = a.record.getRecord(name)
  await ready(ra)
  await ra.setWithAck({ a: 1 })
  await ra.setWithAck('b', [1, 2, 3])
  const rb = b.record.getRecord(name)
  await ready(rb)
  assert.deepEqual(plain(rb.get()), { a: 1, b: [1, 2, 3] })
  assert.strictEqual(rb.version, 2)
  assert.deepEqual(rb.get('b'), [1, 2, 3])
  assertNoErrors(a, b)
})

test('set with a whole value replaces the record for the other client', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra, rb] = await ready(a.record.getRecord(name), b.record.getRecord(name))
  const seen = recorder('B subscription')
  rb.subscribe(seen)
  ra.set({ x: 1, y: { z: 2 } })
  await seen.nth(1)
  assert.deepEqual(plain(rb.get()), { x: 1, y: { z: 2 } })
  ra.set({ only: true })
  const [data] = await seen.nth(2)
  assert.deepEqual(plain(data), { only: true })
  assert.deepEqual(plain(rb.get()), { only: true })
  assert.strictEqual(rb.version, 2)
  // the server holds the replaced value, not a merge
  assert.deepEqual(await ctx.serverState(name), { data: { only: true }, version: 2 })
  assertNoErrors(a, b)
})

test('object key order is kept as written (JavaScript clients see keys in insertion order)', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra, rb] = await ready(a.record.getRecord(name), b.record.getRecord(name))
  const seen = recorder('B subscription')
  rb.subscribe(seen)
  ra.set({ zebra: 1, apple: 2, mango: { z: 1, a: 2 } })
  await seen.nth(1)
  assert.deepEqual(Object.keys(rb.get()), ['zebra', 'apple', 'mango'], 'keys as fanned out')
  ra.set('banana', 3)
  await seen.nth(2)
  const c = await ctx.client()
  const [rc] = await ready(c.record.getRecord(name))
  assert.deepEqual(Object.keys(rc.get()), ['zebra', 'apple', 'mango', 'banana'], 'keys as stored and read back')
  assert.deepEqual(Object.keys(rc.get('mango')), ['z', 'a'])
  assertNoErrors(a, b, c)
})

test('set by path on an empty record creates the path: pets[1].fur.color gives a real array with null at index 0', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra, rb] = await ready(a.record.getRecord(name), b.record.getRecord(name))
  const seen = recorder('B subscription')
  rb.subscribe(seen)
  ra.set('pets[1].fur.color', 'brown')
  await seen.nth(1)
  const expected = { pets: [null, { fur: { color: 'brown' } }] }
  assert.deepEqual(plain(rb.get()), expected)
  assert.ok(Array.isArray(rb.get('pets')), 'pets is a real array on the other client')
  assert.strictEqual(rb.get('pets').length, 2)
  assert.strictEqual(rb.get('pets')[0], null)
  assert.strictEqual(rb.get('pets[1].fur.color'), 'brown')

  // the server applied the path itself: its state is the same
  const state = await ctx.serverState(name)
  assert.deepEqual(state, { data: expected, version: 1 })
  assert.ok(Array.isArray(state.data.pets), 'pets is a real array in the server state')

  // a further path write merges into the existing structure
  ra.set('pets[1].name', 'rex')
  await seen.nth(2)
  assert.deepEqual(plain(rb.get()), { pets: [null, { fur: { color: 'brown' }, name: 'rex' }] })
  assert.deepEqual(await ctx.serverState(name), { data: { pets: [null, { fur: { color: 'brown' }, name: 'rex' }] }, version: 2 })
  assertNoErrors(a, b)
})

test('erase removes a path for the other client and on the server', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra, rb] = await ready(a.record.getRecord(name), b.record.getRecord(name))
  const seen = recorder('B subscription')
  rb.subscribe(seen)
  await ra.setWithAck({ keep: 1, drop: { deep: true } })
  await seen.nth(1)
  ra.erase('drop')
  await seen.nth(2)
  assert.deepEqual(plain(rb.get()), { keep: 1 })
  assert.strictEqual(rb.version, 2)
  assert.deepEqual(await ctx.serverState(name), { data: { keep: 1 }, version: 2 })
  assertNoErrors(a, b)
})

test('path subscriptions fire only for their own path', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra, rb] = await ready(a.record.getRecord(name), b.record.getRecord(name))
  const ab = recorder('a.b')
  const c = recorder('c')
  const all = recorder('whole record')
  rb.subscribe('a.b', ab)
  rb.subscribe('c', c)
  rb.subscribe(all)

  ra.set('c', 1)
  assert.deepEqual(await c.nth(1), [1])
  await all.nth(1)
  assert.equal(ab.calls.length, 0, 'a.b callback must not fire for a write to c')

  ra.set('a.b', 'x')
  assert.deepEqual(await ab.nth(1), ['x'])
  await all.nth(2)
  assert.equal(c.calls.length, 1, 'c callback must not fire for a write to a.b')

  ra.set('a.other', 5) // a sibling of a.b changes: a.b itself does not
  await all.nth(3)
  assert.equal(ab.calls.length, 1, 'a.b callback must not fire for a write to a.other')
  assert.equal(c.calls.length, 1)

  ra.set({ a: { b: 'x', other: 5 }, c: 2 }) // whole-value write that changes only c
  assert.deepEqual(await c.nth(2), [2])
  await all.nth(4)
  assert.equal(ab.calls.length, 1, 'a.b unchanged by the whole-value write')

  // unsubscribe is client side: no more calls for that path
  rb.unsubscribe('c', c)
  ra.set('c', 3)
  await all.nth(5)
  assert.equal(c.calls.length, 2)
  assert.equal(rb.get('c'), 3)
  assertNoErrors(a, b)
})

test('whenReady: callback and promise forms; synchronous once ready', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra] = await ready(a.record.getRecord(name))
  await ra.setWithAck({ k: 'v' })

  const rb = b.record.getRecord(name)
  const cb = recorder('whenReady callback')
  rb.whenReady(cb)
  const [rec] = await cb.nth(1)
  assert.equal(rec, rb)
  assert.equal(rb.isReady, true)
  assert.equal(rb.get('k'), 'v')
  assert.strictEqual(rb.version, 1)

  const again = b.record.getRecord(name) // second wrapper over the same loaded record
  const resolved = await withTimeout(again.whenReady(), 3000, 'whenReady promise')
  assert.equal(resolved, again)
  assert.equal(again.get('k'), 'v')

  let sync = false
  rb.whenReady(() => { sync = true })
  assert.equal(sync, true, 'whenReady runs synchronously on a ready record')
  assertNoErrors(a, b)
})

test('discard: the server stops sending the discarding client updates; others still get them', T, async () => {
  const [a, b, c] = await ctx.clients(3)
  const name = uniq('rec')
  const [ra, rb, rc] = await ready(a.record.getRecord(name), b.record.getRecord(name), c.record.getRecord(name))
  const seenB = recorder('B subscription')
  const seenC = recorder('C subscription')
  rb.subscribe(seenB)
  rc.subscribe(seenC)
  rb.discard()
  // the client sends UNSUBSCRIBE after recordDiscardTimeout; wait for the server's ack
  await waitFor(() => receivedRecordMessages(b).some((m) => m.action === RA.UNSUBSCRIBE && m.isAck), 3000, 'UNSUBSCRIBE ack for B')
  const before = receivedRecordMessages(b, { name }).length

  await ra.setWithAck({ after: 'discard' })
  await seenC.nth(1)
  await sleep(200)
  assert.equal(seenB.calls.length, 0, 'discarded record got no update')
  const after = receivedRecordMessages(b, { name }).slice(before)
  assert.deepEqual(after.map((m) => RA[m.action]), [], 'server sent the discarding client nothing for the record')

  // getting the record again loads the current server state
  const rb2 = b.record.getRecord(name)
  await ready(rb2)
  assert.deepEqual(plain(rb2.get()), { after: 'discard' })
  assert.strictEqual(rb2.version, 1)
  assertNoErrors(a, b, c)
})

test('getRecord twice: discarding one wrapper keeps the subscription alive', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra] = await ready(a.record.getRecord(name))
  const rb1 = b.record.getRecord(name)
  const rb2 = b.record.getRecord(name)
  await ready(rb1, rb2)
  const seen = recorder('rb2 subscription')
  rb2.subscribe(seen)
  rb1.discard()
  await sleep(200) // longer than recordDiscardTimeout
  ra.set({ still: 'subscribed' })
  const [data] = await seen.nth(1)
  assert.deepEqual(plain(data), { still: 'subscribed' })
  assert.ok(!receivedRecordMessages(b).some((m) => m.action === RA.UNSUBSCRIBE), 'no UNSUBSCRIBE while a reference remains')
  assertNoErrors(a, b)
})

test('delete: the other client and the deleter both get the delete event; the record is gone', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra, rb] = await ready(a.record.getRecord(name), b.record.getRecord(name))
  await ra.setWithAck({ doomed: true })
  await waitFor(() => rb.version === 1, 3000, 'B at version 1')
  const deletedB = nextEvent(rb, 'delete')
  const deletedA = nextEvent(ra, 'delete')
  await withTimeout(ra.delete(), 4000, 'delete()')
  await deletedA
  await deletedB
  assert.equal(await b.record.has(name), false)
  assert.equal(await a.record.has(name), false)
  assert.deepEqual(await ctx.serverState(name), { data: 'RECORD_NOT_FOUND', version: -1 })

  // getting it again creates a fresh, empty record at version 0
  const rb2 = b.record.getRecord(name)
  await ready(rb2)
  assert.deepEqual(plain(rb2.get()), {})
  assert.strictEqual(rb2.version, 0)
  assertNoErrors(a, b)
})

test('delete with a callback; the other client is told', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra, rb] = await ready(a.record.getRecord(name), b.record.getRecord(name))
  const deletedB = nextEvent(rb, 'delete')
  const deletedA = nextEvent(ra, 'delete')
  const cb = recorder('delete callback')
  rb.delete(cb) // this time B deletes
  assert.deepEqual(await cb.nth(1, 4000), [null])
  await deletedA
  await deletedB
  assert.equal(await a.record.has(name), false)
  assertNoErrors(a, b)
})

test('has: true for an existing record, false for a missing one (without creating it)', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const missing = uniq('missing')
  await a.record.setDataWithAck(name, { x: 1 })
  assert.strictEqual(await b.record.has(name), true)
  assert.strictEqual(await b.record.has(missing), false)
  const cb = recorder('has callback')
  b.record.has(missing, cb)
  assert.deepEqual(await cb.nth(1), [null, false])
  const cb2 = recorder('has callback')
  a.record.has(name, cb2)
  assert.deepEqual(await cb2.nth(1), [null, true])
  // asking did not create it
  assert.strictEqual(await a.record.has(missing), false)
  assert.strictEqual(await a.record.head(missing), -1)

  // a record created by subscribing exists
  const subscribed = uniq('rec')
  await ready(a.record.getRecord(subscribed))
  assert.strictEqual(await b.record.has(subscribed), true)
  assertNoErrors(a, b)
})

test('snapshot: returns the other client\'s data; a missing record rejects with RECORD_NOT_FOUND and is not created', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const missing = uniq('missing')
  const [ra] = await ready(a.record.getRecord(name))
  await ra.setWithAck({ list: [1, { two: 2 }], s: 'str' })
  assert.deepEqual(plain(await b.record.snapshot(name)), { list: [1, { two: 2 }], s: 'str' })

  await assert.rejects(b.record.snapshot(missing), (e) => e === 'RECORD_NOT_FOUND')
  const cb = recorder('snapshot callback')
  b.record.snapshot(missing, cb)
  const [err] = await cb.nth(1)
  assert.strictEqual(err, 'RECORD_NOT_FOUND')
  assert.strictEqual(await a.record.has(missing), false)

  // snapshot with a callback on an existing record
  const cb2 = recorder('snapshot callback')
  b.record.snapshot(name, cb2)
  const [err2, data2] = await cb2.nth(1)
  assert.strictEqual(err2, null)
  assert.deepEqual(plain(data2), { list: [1, { two: 2 }], s: 'str' })
  assertNoErrors(a, b)
})

test('head: version of an existing record (0 when created by subscribing); -1 for a missing one', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra] = await ready(a.record.getRecord(name))
  assert.strictEqual(await b.record.head(name), 0)
  ra.set('a', 1)
  ra.set('b', 2)
  await ra.setWithAck('c', 3)
  assert.strictEqual(await b.record.head(name), 3)
  const missing = uniq('missing')
  assert.strictEqual(await b.record.head(missing), -1)
  const cb = recorder('head callback')
  b.record.head(missing, cb)
  assert.deepEqual(await cb.nth(1), [null, -1])
  const cb2 = recorder('head callback')
  b.record.head(name, cb2)
  assert.deepEqual(await cb2.nth(1), [null, 3])
  assertNoErrors(a, b)
})

test('a record created by subscribing is {} at version 0 for every other client: has, head, snapshot', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra] = await ready(a.record.getRecord(name))
  assert.strictEqual(ra.version, 0)
  assert.strictEqual(await b.record.has(name), true)
  assert.strictEqual(await b.record.head(name), 0)
  assert.deepEqual(plain(await b.record.snapshot(name)), {})
  assertNoErrors(a, b)
})

test('setData with a callback on a record nobody subscribes to creates it at version 1', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const cb = recorder('setData callback')
  a.record.setData(name, { a: 1 }, cb)
  const [err] = await cb.nth(1)
  assert.strictEqual(err, null)
  assert.deepEqual(plain(await b.record.snapshot(name)), { a: 1 })
  assert.strictEqual(await b.record.head(name), 1)

  const cb2 = recorder('setData path callback')
  a.record.setData(name, 'b.c', 2, cb2)
  assert.strictEqual((await cb2.nth(1))[0], null)
  assert.deepEqual(plain(await b.record.snapshot(name)), { a: 1, b: { c: 2 } })
  assert.strictEqual(await b.record.head(name), 2)

  await withTimeout(a.record.setDataWithAck(name, { replaced: true }), 3000, 'setDataWithAck')
  assert.deepEqual(plain(await b.record.snapshot(name)), { replaced: true })
  assert.strictEqual(await b.record.head(name), 3)

  // a record that was never there, set by path
  const other = uniq('rec')
  await a.record.setDataWithAck(other, 'deep.path', 'v')
  assert.deepEqual(plain(await b.record.snapshot(other)), { deep: { path: 'v' } })
  assert.strictEqual(await b.record.head(other), 1)
  assertNoErrors(a, b)
})

test('setData reaches a client subscribed to the record, with the next version', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [rb] = await ready(b.record.getRecord(name))
  const seen = recorder('B subscription')
  rb.subscribe(seen)
  a.record.setData(name, { from: 'A' }) // no callback, no local record on A
  assert.deepEqual(plain((await seen.nth(1))[0]), { from: 'A' })
  assert.strictEqual(rb.version, 1)
  await a.record.setDataWithAck(name, 'more', true)
  assert.deepEqual(plain((await seen.nth(2))[0]), { from: 'A', more: true })
  assert.strictEqual(rb.version, 2)
  assertNoErrors(a, b)
})

test('write acknowledgements: set with a callback is acknowledged after the server has the write', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra] = await ready(a.record.getRecord(name))
  const cb1 = recorder('ack 1')
  const cb2 = recorder('ack 2')
  const cb3 = recorder('ack 3')
  ra.set({ x: 1 }, cb1)
  ra.set('y', 2, cb2)
  ra.set('z', { deep: [1] }, cb3)
  assert.deepEqual(await cb1.nth(1), [null, name])
  assert.deepEqual(await cb2.nth(1), [null, name])
  assert.deepEqual(await cb3.nth(1), [null, name])
  // acknowledged means the server state already holds it
  assert.deepEqual(plain(await b.record.snapshot(name)), { x: 1, y: 2, z: { deep: [1] } })
  assert.strictEqual(await b.record.head(name), 3)

  await withTimeout(ra.setWithAck('x', 10), 3000, 'setWithAck')
  await withTimeout(ra.eraseWithAck('y'), 3000, 'eraseWithAck')
  assert.deepEqual(plain(await b.record.snapshot(name)), { x: 10, z: { deep: [1] } })
  assert.strictEqual(await b.record.head(name), 5)
  assertNoErrors(a, b)
})

test('conflicting writes from two clients (one at a time per client) converge on both and on the server', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('rec')
  const [ra, rb] = await ready(a.record.getRecord(name), b.record.getRecord(name))
  await ra.setWithAck({ v: 'start', fromA: 0, fromB: 0 })
  await waitFor(() => rb.version === 1, 3000, 'B at version 1')
  let version = 1
  const versionExists = () => [a, b].flatMap((c) => receivedRecordMessages(c, { name, action: RA.VERSION_EXISTS })).length
  for (let round = 1; round <= 5; round++) {
    const conflictsBefore = versionExists()
    // both write the same path on top of the same version, in the same tick
    ra.set('v', `A${round}`)
    rb.set('v', `B${round}`)
    await waitFor(() => ra.version === rb.version && ra.version > version &&
      isDeepStrictEqual(plain(ra.get()), plain(rb.get())), 4000, `convergence in round ${round}`)
    const agreed = plain(ra.get())
    assert.ok([`A${round}`, `B${round}`].includes(agreed.v), `round ${round}: converged on one of the writes, got ${agreed.v}`)
    version = ra.version
    // exactly one of the two writes lost, and its writer was told so with VERSION_EXISTS
    assert.strictEqual(version, 1 + round, 'one write accepted per round')
    assert.ok(versionExists() > conflictsBefore, `round ${round}: the losing writer got VERSION_EXISTS`)
    // the server agrees too
    assert.deepEqual(await ctx.serverState(name), { data: agreed, version })
    await sleep(50) // let any in-flight merge traffic settle before the next round
    assert.strictEqual(ra.version, version)
    assert.strictEqual(rb.version, version)
  }
  // Ordering, per connection: a VERSION_EXISTS that reports version V comes after the update
  // to V was delivered to that subscriber (the real server fans the winning write out before
  // it turns the losing one down). Out of order, the client logs a VERSION_EXISTS warning and
  // keeps its own data until the late update makes it re-read.
  for (const c of [a, b]) {
    const msgs = receivedRecordMessages(c, { name })
    msgs.forEach((m, i) => {
      if (m.action !== RA.VERSION_EXISTS) return
      const delivered = msgs.slice(0, i).some((u) => [RA.UPDATE, RA.PATCH, RA.ERASE].includes(u.action) && u.version === m.version)
      assert.ok(delivered, `VERSION_EXISTS for version ${m.version} arrived before the update to version ${m.version}`)
    })
  }
  assertNoErrors(a, b)
})

if (TARGET === 'recordsync') {
  test('a PATCH_MULTI from another SDK reaches JS subscribers as the whole value (recordsync only: deepstream 7 has no PATCH_MULTI, and the JS client drops one it receives)', T, async () => {
    const [a, b] = await ctx.clients(2)
    const name = uniq('rec')
    const [ra, rb] = await ready(a.record.getRecord(name), b.record.getRecord(name))
    await ra.setWithAck({ keep: 1, gone: true })
    await waitFor(() => rb.version === 1, 3000, 'B at version 1')
    const raw = await rawClient(ctx.server.url)
    const PATCH_MULTI = 35
    raw.send({ topic: P.TOPIC.RECORD, action: PATCH_MULTI, name, version: 2, isWriteAck: true, correlationId: 'm', data: JSON.stringify([{ path: 'added.deep', data: 0.1 }, { path: 'gone' }]) })
    await raw.expect((m) => m.topic === P.TOPIC.RECORD && m.action === RA.WRITE_ACKNOWLEDGEMENT, 'the write acknowledged')
    const want = { keep: 1, added: { deep: 0.1 } }
    for (const r of [ra, rb]) {
      await waitFor(() => r.version === 2, 3000, `${r === ra ? 'A' : 'B'} at version 2`)
      assert.deepEqual(plain(r.get()), want)
    }
    raw.close()
    assertNoErrors(a, b)
  })
}

test('record.notify(names) resolves (the server re-reads the records from storage and tells their subscribers); the subscriber keeps its value', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('notify')
  const [ra] = await ready(a.record.getRecord(name))
  await withTimeout(ra.set({ n: 1 }, () => {}) || sleep(50), 4000, 'set')
  await waitFor(() => ra.version === 1, 4000, 'version 1')
  await withTimeout(b.record.notify([name, uniq('notify-none')]), 4000, 'notify resolves')
  await sleep(100)
  assert.deepEqual(plain(ra.get()), { n: 1 })
  assert.strictEqual(ra.version, 1)
  assertNoErrors(a, b)
})
