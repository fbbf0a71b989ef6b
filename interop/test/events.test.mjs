// Events: deepstream's publish/subscribe through the real @deepstream/client, on both
// transports: subscribe / emit / unsubscribe, what the emitter sees, payloads kept exactly,
// listening on event names (accept / reject / onStop), and the `event` permission rules.
// Each test uses names of its own (uniq), so tests cannot see each other's events.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { useServer, assertNoErrors, T } from '../lib/suite.mjs'
import { startServer, INTEROP_DIR } from '../lib/server.mjs'
import { connect, withTimeout, waitFor, recorder, uniq, sleep, TOPIC } from '../lib/client.mjs'

const ctx = useServer()

/** Event-topic messages this client received, optionally only for one name / action. */
function eventMessages (client, { name, action } = {}) {
  return client.received.filter((m) => m.topic === TOPIC.EVENT &&
    (name === undefined || m.name === name) &&
    (action === undefined || m.action === action))
}

// EVENT_ACTION numbers (event.proto).
const EA = { EMIT: 2, SUBSCRIBE: 3, UNSUBSCRIBE: 4, MESSAGE_DENIED: 104, MULTIPLE_SUBSCRIPTIONS: 106 }

/**
 * Subscribes and waits for the server's ack (the client batches subscribes for a moment).
 * The server sends SUBSCRIBE only as an ack (deepstream's JSON endpoint leaves `isAck` out
 * of it: see assertNoErrors in lib/suite.mjs; the binary acks are checked in the tests).
 */
async function subscribed (client, name, cb) {
  const acks = () => eventMessages(client, { action: EA.SUBSCRIBE }).length
  const before = acks()
  client.event.subscribe(name, cb)
  await waitFor(() => acks() > before, 4000, `the subscribe of ${name} acked`)
}

test('events: every subscriber gets an emitted event, the emitter only its own local callback', T, async () => {
  const [a, b, c] = await ctx.clients(3)
  const name = uniq('ev')
  const onA = recorder('emitter')
  const onB = recorder('subscriber b')
  const onC = recorder('subscriber c')
  await subscribed(a, name, onA)
  await subscribed(b, name, onB)
  await subscribed(c, name, onC)
  assert.ok(eventMessages(b, { action: EA.SUBSCRIBE }).every((m) => m.isAck === true), 'acks carry isAck')

  a.event.emit(name, { hello: 'world' })
  assert.deepEqual(await onB.nth(1), [{ hello: 'world' }])
  assert.deepEqual(await onC.nth(1), [{ hello: 'world' }])
  // The client calls the emitter's own callback locally; the server sends it nothing.
  await sleep(200)
  assert.equal(onA.calls.length, 1)
  assert.equal(eventMessages(a, { action: EA.EMIT }).length, 0, 'no echo to the emitter')
  assertNoErrors(a, b, c)
})

test('events: a client that does not subscribe receives nothing; unsubscribe stops delivery', T, async () => {
  const [a, b, other] = await ctx.clients(3)
  const name = uniq('ev')
  const onB = recorder('subscriber')
  await subscribed(b, name, onB)
  await subscribed(other, uniq('ev-other'), () => {})

  a.event.emit(name, 1)
  assert.deepEqual(await onB.nth(1), [1])

  const acks = () => eventMessages(b, { action: EA.UNSUBSCRIBE }).filter((m) => m.isAck).length
  b.event.unsubscribe(name, onB)
  await waitFor(() => acks() === 1, 4000, 'the unsubscribe acked')
  a.event.emit(name, 2)
  // A later event of another name, emitted after, arrives; the unsubscribed one did not.
  const later = uniq('ev-later')
  const onLater = recorder('later')
  await subscribed(b, later, onLater)
  a.event.emit(later, 3)
  assert.deepEqual(await onLater.nth(1), [3])
  assert.equal(onB.calls.length, 1)
  assert.equal(eventMessages(other, { action: EA.EMIT }).length, 0)
  assertNoErrors(a, b, other)
})

test('events: payloads arrive exactly as emitted (numbers, strings, key order, null, arrays, no data)', T, async () => {
  const [a, bin, json] = [await ctx.client(), await ctx.client(), await ctx.client({ json: true })]
  const name = uniq('ev')
  const onBin = recorder('binary subscriber')
  const onJson = recorder('JSON subscriber')
  await subscribed(bin, name, onBin)
  await subscribed(json, name, onJson)
  const payloads = [
    { z: 1, a: 2, m: { y: [3, 2, 1], b: null } },
    [1, 'two', null, [3.5, -0.25], { k: 'v' }],
    'a string with "quotes" and \u00e9\u{1F600}',
    0,
    -12.5,
    1e21,
    Number.MAX_SAFE_INTEGER,
    true,
    false,
    null,
    ''
  ]
  for (const p of payloads) a.event.emit(name, p)
  a.event.emit(name)
  for (const on of [onBin, onJson]) {
    await on.nth(payloads.length + 1)
    const got = on.calls.map((args) => args[0])
    assert.deepEqual(got.slice(0, payloads.length), payloads)
    // key order too
    assert.deepEqual(Object.keys(got[0]), ['z', 'a', 'm'])
    assert.deepEqual(Object.keys(got[0].m), ['y', 'b'])
    assert.equal(got[payloads.length], undefined, 'an event emitted without data')
  }
  // and from the JSON transport to a binary subscriber
  json.event.emit(name, { from: 'json', n: [1.5, 2] })
  assert.deepEqual((await onBin.nth(payloads.length + 2))[0], { from: 'json', n: [1.5, 2] })
  assertNoErrors(a, bin, json)
})

test('events: subscribing twice in one connection is one subscription', T, async () => {
  const [a, b] = await ctx.clients(2)
  const name = uniq('ev')
  const first = recorder('first callback')
  const second = recorder('second callback')
  await subscribed(b, name, first)
  b.event.subscribe(name, second) // the client sends nothing for a name it subscribes to
  a.event.emit(name, 'x')
  assert.deepEqual(await first.nth(1), ['x'])
  assert.deepEqual(await second.nth(1), ['x'])
  await sleep(200)
  assert.equal(first.calls.length, 1)
  assert.equal(eventMessages(b, { action: EA.EMIT }).length, 1)
  assertNoErrors(a, b)
})

/** A fresh prefix and its listen pattern (a regular expression). */
let n = 0
function pattern () {
  const prefix = `evl${process.pid}x${Date.now().toString(36)}x${++n}`
  return { prefix, pattern: `^${prefix}/.*` }
}

test('events listen: accept, the provider emits to the subscriber, onStop when the last subscriber leaves', T, async () => {
  const [provider, sub, sub2] = await ctx.clients(3)
  const { prefix, pattern: pat } = pattern()
  const offers = recorder('listen callback')
  const stops = recorder('onStop')
  provider.event.listen(pat, (name, response) => {
    offers(name)
    response.accept()
    response.onStop((stopped) => stops(stopped))
  })
  await sleep(150) // let LISTEN reach the server

  const name = `${prefix}/ticker`
  const onSub = recorder('subscriber')
  sub.event.subscribe(name, onSub)
  assert.deepEqual(await offers.nth(1, 4000), [name])
  provider.event.emit(name, { price: 10.25 })
  assert.deepEqual(await onSub.nth(1), [{ price: 10.25 }])

  // a second subscriber: the provider is not asked again
  const onSub2 = recorder('second subscriber')
  await subscribed(sub2, name, onSub2)
  await sleep(200)
  assert.equal(offers.calls.length, 1)

  sub.event.unsubscribe(name, onSub)
  await sleep(200)
  assert.equal(stops.calls.length, 0, 'a subscriber is left')
  sub2.event.unsubscribe(name, onSub2)
  assert.deepEqual(await stops.nth(1, 4000), [name])
  assertNoErrors(provider, sub, sub2)
})

test('events listen: a reject moves the offer to the next listener; an existing subscription is offered to a new listener', T, async () => {
  const [refuser, taker, sub] = await ctx.clients(3)
  const { prefix, pattern: pat } = pattern()
  const name = `${prefix}/x`
  // subscribed before anyone listens
  const onSub = recorder('subscriber')
  await subscribed(sub, name, onSub)

  const refused = recorder('refuser')
  refuser.event.listen(pat, (match, response) => { refused(match); response.reject() })
  assert.deepEqual(await refused.nth(1, 4000), [name])

  const taken = recorder('taker')
  taker.event.listen(pat, (match, response) => { taken(match); response.accept() })
  assert.deepEqual(await taken.nth(1, 4000), [name])
  taker.event.emit(name, 'provided')
  assert.deepEqual(await onSub.nth(1), ['provided'])
  assertNoErrors(refuser, taker, sub)
})

test('events listen: a provider that disconnects is replaced by another listener', T, async () => {
  const [first, second, sub] = await ctx.clients(3)
  const { prefix, pattern: pat } = pattern()
  const name = `${prefix}/y`
  const firstOffers = recorder('first')
  first.event.listen(pat, (match, response) => { firstOffers(match); response.accept() })
  await sleep(150)
  const onSub = recorder('subscriber')
  sub.event.subscribe(name, onSub)
  assert.deepEqual(await firstOffers.nth(1, 4000), [name])

  const secondOffers = recorder('second')
  second.event.listen(pat, (match, response) => { secondOffers(match); response.accept() })
  await sleep(150)
  assert.equal(secondOffers.calls.length, 0, 'provided already')
  first.close()
  assert.deepEqual(await secondOffers.nth(1, 4000), [name])
  assertNoErrors(second, sub)
})

describe('events with permissions', () => {
  const FIXTURES = join(INTEROP_DIR, 'fixtures', 'permissions')
  let server
  const open = []
  before(async () => {
    server = await startServer({
      security: { permissions: join(FIXTURES, 'permissions.yml'), users: join(FIXTURES, 'users.yml') }
    })
  })
  after(async () => {
    for (const c of open) { try { c.close() } catch {} }
    if (server) await server.stop()
  })
  const login = async (username) => {
    const c = await connect(server, { authData: { username, password: 'password' } })
    open.push(c)
    return c
  }

  test('event rules: a refused subscribe and a refused emit are answered MESSAGE_DENIED; allowed ones work', T, async () => {
    const [alice, carol] = [await login('alice'), await login('carol')]
    const name = `ops/${uniq('alert')}`
    const onCarol = recorder('admin subscriber')
    await subscribed(carol, name, onCarol)

    // alice may not subscribe to ops/*
    alice.event.subscribe(name, () => {})
    await waitFor(() => eventMessages(alice, { action: EA.MESSAGE_DENIED, name }).length === 1, 4000, 'subscribe denied')
    const denied = eventMessages(alice, { action: EA.MESSAGE_DENIED, name })[0]
    assert.equal(denied.originalAction, EA.SUBSCRIBE)

    // nor emit to it; carol's subscription hears nothing of it
    alice.event.emit(name, { level: 'high' })
    await waitFor(() => eventMessages(alice, { action: EA.MESSAGE_DENIED, name }).length === 2, 4000, 'emit denied')
    assert.equal(eventMessages(alice, { action: EA.MESSAGE_DENIED, name })[1].originalAction, EA.EMIT)
    await sleep(200)
    assert.equal(onCarol.calls.length, 0)

    // a publish rule that reads the payload: only levels below 3 from non-admins
    const alerts = `levels/${uniq('l')}`
    await subscribed(carol, alerts, onCarol)
    alice.event.emit(alerts, { level: 5 })
    alice.event.emit(alerts, { level: 1 })
    assert.deepEqual(await onCarol.nth(1), [{ level: 1 }])
    await waitFor(() => eventMessages(alice, { action: EA.MESSAGE_DENIED, name: alerts }).length === 1, 4000, 'level 5 denied')
    await sleep(200)
    assert.equal(onCarol.calls.length, 1)

    // listen on ops/ patterns is for admins
    const pat = '^ops/.*'
    alice.event.listen(pat, () => {})
    await waitFor(() => eventMessages(alice, { action: EA.MESSAGE_DENIED, name: pat }).length === 1, 4000, 'listen denied')
  })
})
