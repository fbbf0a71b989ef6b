// The JSON transport (/deepstream-json, client option socketOptions.jsonTransportMode), each
// case with a JSON client and a binary (protobuf) client on the same records.
// (assertNoErrors tolerates deepstream's own JSON-ack bug only when the target is deepstream:
// see lib/suite.mjs.)

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useServer, plain, assertNoErrors, T } from '../lib/suite.mjs'
import { withTimeout, waitFor, recorder, nextEvent, uniq, sleep } from '../lib/client.mjs'

const ctx = useServer()

async function ready (...records) {
  await withTimeout(Promise.all(records.map((r) => r.whenReady())), 4000, 'ready')
  return records
}

test('json: a JSON client and a binary client share a record both ways', T, async () => {
  const j = await ctx.client({ json: true })
  const b = await ctx.client()
  const name = uniq('json')
  const [rj, rb] = await ready(j.record.getRecord(name), b.record.getRecord(name))
  assert.deepEqual(plain(rj.get()), {})
  assert.strictEqual(rj.version, 0)
  const seenJ = recorder('JSON subscription')
  const seenB = recorder('binary subscription')
  rj.subscribe(seenJ)
  rb.subscribe(seenB)

  rb.set({ from: 'binary', n: [1, 2] })
  assert.deepEqual(plain((await seenJ.nth(1))[0]), { from: 'binary', n: [1, 2] })
  assert.strictEqual(rj.version, 1)

  rj.set('pets[1].fur.color', 'brown')
  assert.deepEqual(plain((await seenB.until((d) => d.pets))[0]), { from: 'binary', n: [1, 2], pets: [null, { fur: { color: 'brown' } }] })
  assert.ok(Array.isArray(rb.get('pets')))
  assert.strictEqual(rb.version, 2)

  await withTimeout(rj.setWithAck('acked', true), 3000, 'JSON setWithAck')
  assert.deepEqual(await ctx.serverState(name), { data: { from: 'binary', n: [1, 2], pets: [null, { fur: { color: 'brown' } }], acked: true }, version: 3 })
  rj.erase('n')
  await seenB.until((d) => d.n === undefined)
  assert.strictEqual(rb.version, 4)
  assertNoErrors(j, b)
})

test('json: head, has and snapshot of existing and missing records', T, async () => {
  const j = await ctx.client({ json: true })
  const b = await ctx.client()
  const name = uniq('json')
  const missing = uniq('missing')
  await b.record.setDataWithAck(name, { here: 1 })
  assert.strictEqual(await j.record.head(name), 1)
  assert.strictEqual(await j.record.head(missing), -1)
  assert.strictEqual(await j.record.has(name), true)
  assert.strictEqual(await j.record.has(missing), false)
  assert.deepEqual(plain(await j.record.snapshot(name)), { here: 1 })
  await assert.rejects(j.record.snapshot(missing), (e) => e === 'RECORD_NOT_FOUND')
  assert.strictEqual(await b.record.has(missing), false)
  assertNoErrors(j, b)
})

test('json: setData with acknowledgement creates a record the binary client reads', T, async () => {
  const j = await ctx.client({ json: true })
  const b = await ctx.client()
  const name = uniq('json')
  const cb = recorder('setData callback')
  j.record.setData(name, { made: 'by json' }, cb)
  assert.strictEqual((await cb.nth(1))[0], null)
  assert.deepEqual(plain(await b.record.snapshot(name)), { made: 'by json' })
  assert.strictEqual(await b.record.head(name), 1)
  await withTimeout(j.record.setDataWithAck(name, 'path.to', 5), 3000, 'JSON setDataWithAck with path')
  assert.deepEqual(plain(await b.record.snapshot(name)), { made: 'by json', path: { to: 5 } })
  assertNoErrors(j, b)
})

test('json: delete from either transport reaches the other', T, async () => {
  const j = await ctx.client({ json: true })
  const b = await ctx.client()
  const n1 = uniq('json')
  const [rj1, rb1] = await ready(j.record.getRecord(n1), b.record.getRecord(n1))
  const jDeleted = nextEvent(rj1, 'delete')
  await withTimeout(rb1.delete(), 3000, 'binary delete')
  await jDeleted

  const n2 = uniq('json')
  const [rj2, rb2] = await ready(j.record.getRecord(n2), b.record.getRecord(n2))
  const bDeleted = nextEvent(rb2, 'delete')
  const jOwn = nextEvent(rj2, 'delete')
  await withTimeout(rj2.delete(), 3000, 'JSON delete')
  await bDeleted
  await jOwn
  assert.strictEqual(await b.record.has(n1), false)
  assert.strictEqual(await j.record.has(n2), false)
  assertNoErrors(j, b)
})

test('json: listen across transports (JSON provider, binary subscriber and the reverse)', T, async () => {
  const j = await ctx.client({ json: true })
  const b = await ctx.client()
  const prefix = `jl${process.pid}x${Date.now().toString(36)}`
  const offers = recorder('JSON listen callback')
  const stopped = recorder('JSON onStop')
  j.record.listen(`^${prefix}/a/.*`, (match, response) => { offers(match); response.accept(); response.onStop(stopped) })
  await sleep(100)
  const rb = b.record.getRecord(`${prefix}/a/1`)
  await ready(rb)
  assert.deepEqual(await offers.nth(1), [`${prefix}/a/1`])
  await waitFor(() => rb.hasProvider, 3000, 'binary subscriber hasProvider')
  rb.discard()
  assert.deepEqual(await stopped.nth(1), [`${prefix}/a/1`])

  b.record.listen(`^${prefix}/b/.*`, (match, response) => response.accept())
  await sleep(100)
  const rj = j.record.getRecord(`${prefix}/b/1`)
  await ready(rj)
  await waitFor(() => rj.hasProvider, 3000, 'JSON subscriber hasProvider')
  assertNoErrors(j, b)
})

test('json: lists through the JSON transport', T, async () => {
  const j = await ctx.client({ json: true })
  const b = await ctx.client()
  const name = uniq('jsonlist')
  const [lj, lb] = await ready(j.record.getList(name), b.record.getList(name))
  const seen = recorder('binary list subscription')
  lb.subscribe(seen)
  lj.setEntries(['a'])
  assert.deepEqual((await seen.nth(1))[0], ['a'])
  lj.addEntry('b')
  assert.deepEqual((await seen.nth(2))[0], ['a', 'b'])
  lj.removeEntry('a')
  assert.deepEqual((await seen.nth(3))[0], ['b'])
  assertNoErrors(j, b)
})
