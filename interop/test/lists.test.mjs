// Lists, anonymous records and client-generated UIDs, each seen from a second client.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useServer, plain, assertNoErrors, T } from '../lib/suite.mjs'
import { withTimeout, recorder, uniq, sleep } from '../lib/client.mjs'

const ctx = useServer()

async function ready (...records) {
  await withTimeout(Promise.all(records.map((r) => r.whenReady())), 4000, 'ready')
  return records
}

test('lists: setEntries, addEntry, removeEntry are seen by the other client', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('list')
  const [la, lb] = await ready(a.record.getList(name), b.record.getList(name))
  assert.deepEqual(la.getEntries(), [])
  assert.equal(lb.isEmpty(), true)
  const seen = recorder('B list subscription')
  lb.subscribe(seen)
  const added = recorder('entry-added')
  lb.on('entry-added', added)
  const removed = recorder('entry-removed')
  lb.on('entry-removed', removed)

  la.setEntries(['a', 'b'])
  assert.deepEqual((await seen.nth(1))[0], ['a', 'b'])
  la.addEntry('c')
  assert.deepEqual((await seen.nth(2))[0], ['a', 'b', 'c'])
  la.addEntry('x', 1)
  assert.deepEqual((await seen.nth(3))[0], ['a', 'x', 'b', 'c'])
  la.removeEntry('a')
  assert.deepEqual((await seen.nth(4))[0], ['x', 'b', 'c'])
  assert.deepEqual(lb.getEntries(), ['x', 'b', 'c'])
  assert.equal(lb.isEmpty(), false)
  assert.strictEqual(lb.version, 4)
  assert.ok(added.calls.some(([entry, index]) => entry === 'x' && index === 1), `entry-added for x at 1: ${JSON.stringify(added.calls)}`)
  assert.ok(removed.calls.some(([entry]) => entry === 'a'), `entry-removed for a: ${JSON.stringify(removed.calls)}`)

  // and back the other way, with an acknowledgement
  const seenA = recorder('A list subscription')
  la.subscribe(seenA)
  await withTimeout(lb.setEntriesWithAck(['only']), 3000, 'setEntriesWithAck')
  assert.deepEqual((await seenA.nth(1))[0], ['only'])
  assert.deepEqual(await ctx.serverState(name), { data: ['only'], version: 5 })

  // a third connection loads the list from the server
  const c = await ctx.client()
  const [lc] = await ready(c.record.getList(name))
  assert.deepEqual(lc.getEntries(), ['only'])
  assertNoErrors(a, b, c)
})

test('lists: removeEntry at an index removes only that occurrence', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('list')
  const [la, lb] = await ready(a.record.getList(name), b.record.getList(name))
  const seen = recorder('B list subscription')
  lb.subscribe(seen)
  la.setEntries(['r', 's', 'r'])
  await seen.nth(1)
  la.removeEntry('r', 2)
  assert.deepEqual((await seen.nth(2))[0], ['r', 's'])
  assertNoErrors(a, b)
})

test('anonymous record: setName switches the underlying record; subscriptions follow', T, async () => {
  const [a, b] = await ctx.clients(2)
  const r1 = uniq('anon')
  const r2 = uniq('anon')
  await b.record.setDataWithAck(r1, { title: 'one' })
  await b.record.setDataWithAck(r2, { title: 'two' })

  const anon = a.record.getAnonymousRecord()
  const titles = recorder('title subscription')
  anon.subscribe('title', titles)
  const renamed = recorder('nameChanged')
  anon.on('nameChanged', renamed)

  await withTimeout(anon.setName(r1), 3000, 'setName r1')
  assert.equal(anon.name, r1)
  assert.equal(anon.get('title'), 'one')
  assert.deepEqual(plain(anon.get()), { title: 'one' })
  assert.strictEqual(anon.version, 1)

  await withTimeout(anon.setName(r2), 3000, 'setName r2')
  assert.equal(anon.name, r2)
  assert.equal(anon.get('title'), 'two')
  assert.deepEqual(renamed.calls, [[r1], [r2]])

  const before = titles.calls.length
  // an update to the old record no longer reaches the anonymous record
  await b.record.setDataWithAck(r1, 'title', 'one-b')
  // an update to the current one does
  await b.record.setDataWithAck(r2, 'title', 'two-b')
  await titles.until((t) => t === 'two-b')
  await sleep(100)
  assert.ok(!titles.calls.slice(before).some(([t]) => t === 'one-b'), `old record leaked: ${JSON.stringify(titles.calls)}`)
  assert.equal(anon.get('title'), 'two-b')
  assert.strictEqual(anon.version, 2)

  // writes through the anonymous record land in the current record
  await withTimeout(anon.setWithAck('title', 'from-anon'), 3000, 'anon setWithAck')
  assert.deepEqual(plain(await b.record.snapshot(r2)), { title: 'from-anon' })
  assert.deepEqual(plain(await b.record.snapshot(r1)), { title: 'one-b' })
  assertNoErrors(a, b)
})

test('getUid: unique, well-formed ids usable as record names across clients', T, async () => {
  const [a, b] = await ctx.clients(2)
  const ids = new Set()
  for (let i = 0; i < 500; i++) {
    ids.add(a.getUid())
    ids.add(b.getUid())
  }
  assert.equal(ids.size, 1000, 'no duplicate uids')
  for (const id of ids) assert.match(id, /^[a-z0-9]+-[a-z0-9]+$/)
  const name = `book/${a.getUid()}`
  await a.record.setDataWithAck(name, { title: 'uid' })
  assert.deepEqual(plain(await b.record.snapshot(name)), { title: 'uid' })
  assertNoErrors(a, b)
})
