// Listening: active providers for record name patterns.
// Each test uses its own pattern prefix so tests cannot see each other's subscriptions.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useServer, assertNoErrors, T } from '../lib/suite.mjs'
import { withTimeout, waitFor, recorder, sleep } from '../lib/client.mjs'

const ctx = useServer()

let n = 0
/** A fresh prefix and its listen pattern (a regular expression). */
function pattern () {
  const prefix = `lst${process.pid}x${Date.now().toString(36)}x${++n}`
  return { prefix, pattern: `^${prefix}/.*` }
}

/**
 * Subscribes to 'hasProviderChanged'. @deepstream/client 7.0.5 emits it on the record's
 * RecordCore (`record.record`, shared by all wrappers of one record) and does not forward it
 * to the public Record wrapper, so listen there.
 */
function onHasProviderChanged (rec, cb) {
  rec.record.on('hasProviderChanged', cb)
  return cb
}

async function ready (...records) {
  await withTimeout(Promise.all(records.map((r) => r.whenReady())), 4000, 'records ready')
  return records
}

test('listen accept: the provider is offered the subscription; subscribers see hasProvider (property and hasProviderChanged)', T, async () => {
  const [provider, sub, late] = await ctx.clients(3)
  const { prefix, pattern: pat } = pattern()
  const offers = recorder('listen callback')
  provider.record.listen(pat, (match, response) => { offers(match); response.accept() })
  await sleep(100) // let LISTEN reach the server

  const name = `${prefix}/item`
  const rec = sub.record.getRecord(name)
  const changed = recorder('hasProviderChanged')
  onHasProviderChanged(rec, changed)
  assert.deepEqual(await offers.nth(1), [name])
  assert.deepEqual(await changed.nth(1), [true])
  assert.equal(rec.hasProvider, true)
  await ready(rec)

  // a later subscriber learns about the provider when it subscribes; the provider is not asked again
  const rec2 = late.record.getRecord(name)
  await ready(rec2)
  await waitFor(() => rec2.hasProvider === true, 3000, 'late subscriber hasProvider')
  await sleep(100)
  assert.equal(offers.calls.length, 1, 'the provider is offered each subscription once')

  // the provider may publish into the record for the subscribers
  const seen = recorder('subscriber update')
  rec.subscribe(seen)
  provider.record.setData(name, { provided: true })
  assert.deepEqual((await seen.nth(1))[0], { provided: true })
  assertNoErrors(provider, sub, late)
})

test('listen reject: a rejected match is offered to another listener, which accepts', T, async () => {
  const [sub, p1, p2] = await ctx.clients(3)
  const { prefix, pattern: pat } = pattern()
  const asked = []
  const make = (who) => (match, response) => {
    asked.push({ who, match })
    if (asked.length === 1) response.reject()
    else response.accept()
  }
  p1.record.listen(pat, make('p1'))
  p2.record.listen(pat, make('p2'))
  await sleep(100)
  const name = `${prefix}/x`
  const rec = sub.record.getRecord(name)
  const changed = onHasProviderChanged(rec, recorder('hasProviderChanged'))
  assert.deepEqual(await changed.nth(1, 4000), [true])
  assert.equal(rec.hasProvider, true)
  assert.equal(asked.length, 2, `asked ${JSON.stringify(asked)}`)
  assert.notEqual(asked[0].who, asked[1].who, 'after a reject, the other listener is asked')
  assert.deepEqual(asked.map((x) => x.match), [name, name])
  await sleep(200)
  assert.equal(asked.length, 2, 'no further offers once accepted')
  assertNoErrors(sub, p1, p2)
})

test('listen reject by the only listener: the subscriber has no provider', T, async () => {
  const [sub, p] = await ctx.clients(2)
  const { prefix, pattern: pat } = pattern()
  const offers = recorder('listen callback')
  p.record.listen(pat, (match, response) => { offers(match); response.reject() })
  await sleep(100)
  const rec = sub.record.getRecord(`${prefix}/y`)
  await ready(rec)
  assert.deepEqual(await offers.nth(1), [`${prefix}/y`])
  await sleep(300)
  assert.equal(rec.hasProvider, false)
  assertNoErrors(sub, p)
})

test('listen onStop: called when the last subscriber discards, not before', T, async () => {
  const [provider, s1, s2] = await ctx.clients(3)
  const { prefix, pattern: pat } = pattern()
  const name = `${prefix}/stop`
  const stopped = recorder('onStop')
  const offers = recorder('listen callback')
  provider.record.listen(pat, (match, response) => {
    offers(match)
    response.accept()
    response.onStop(stopped)
  })
  await sleep(100)
  const [r1, r2] = await ready(s1.record.getRecord(name), s2.record.getRecord(name))
  await waitFor(() => r1.hasProvider && r2.hasProvider, 3000, 'both subscribers see the provider')
  r1.discard()
  await sleep(400)
  assert.equal(stopped.calls.length, 0, 'onStop must wait for the last subscriber')
  r2.discard()
  assert.deepEqual(await stopped.nth(1), [name])
  assert.equal(offers.calls.length, 1)

  // a new subscription afterwards offers the record again
  const r3 = s1.record.getRecord(name)
  await ready(r3)
  assert.deepEqual(await offers.nth(2), [name])
  await waitFor(() => r3.hasProvider, 3000, 'hasProvider after re-offer')
  assertNoErrors(provider, s1, s2)
})

test('a new listener is offered the existing subscriptions that have no provider', T, async () => {
  const [sub, provider] = await ctx.clients(2)
  const { prefix, pattern: pat } = pattern()
  const names = [`${prefix}/1`, `${prefix}/2`]
  const recs = await ready(...names.map((nm) => sub.record.getRecord(nm)))
  const other = await ready(sub.record.getRecord(`not-${prefix}/3`)) // does not match
  const offers = recorder('listen callback')
  provider.record.listen(pat, (match, response) => { offers(match); response.accept() })
  await offers.nth(2)
  assert.deepEqual(offers.calls.map((c) => c[0]).sort(), names)
  await waitFor(() => recs.every((r) => r.hasProvider), 3000, 'both records have the provider')
  await sleep(100)
  assert.equal(offers.calls.length, 2, 'only matching subscriptions are offered')
  assert.equal(other[0].hasProvider, false)
  assertNoErrors(sub, provider)
})

test('hasProvider turns false when the provider unlistens or disconnects', T, async () => {
  const [sub, p1, p2] = await ctx.clients(3)
  const { prefix, pattern: pat } = pattern()
  p1.record.listen(pat, (match, response) => response.accept())
  await sleep(100)
  const rec = sub.record.getRecord(`${prefix}/a`)
  const changed = recorder('hasProviderChanged')
  onHasProviderChanged(rec, changed)
  assert.deepEqual(await changed.nth(1), [true])
  p1.record.unlisten(pat)
  assert.deepEqual(await changed.nth(2), [false])
  assert.equal(rec.hasProvider, false)

  p2.record.listen(pat, (match, response) => response.accept())
  assert.deepEqual(await changed.nth(3, 4000), [true])
  p2.close()
  assert.deepEqual(await changed.nth(4), [false])
  assert.equal(rec.hasProvider, false)
  assertNoErrors(sub, p1)
})
