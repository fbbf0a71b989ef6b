// Bad input: a misbehaving connection gets an error or is closed; real clients connected at
// the same time keep working, and the record state is untouched.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useServer, plain, assertNoErrors, T, TARGET } from '../lib/suite.mjs'
import { withTimeout, recorder, uniq, sleep } from '../lib/client.mjs'
import { rawSocket, rawClient, actionName, P } from '../lib/raw.mjs'

const ctx = useServer()

/** Two real clients sharing a record; returns a check that they still exchange writes. */
async function bystanders (opts = {}) {
  const [a, b] = await ctx.clients(2, opts)
  const name = uniq('bystander')
  const ra = a.record.getRecord(name)
  const rb = b.record.getRecord(name)
  await withTimeout(Promise.all([ra.whenReady(), rb.whenReady()]), 4000, 'bystanders ready')
  await ra.setWithAck({ round: 0 })
  let round = 0
  return {
    clients: [a, b],
    async stillWork () {
      round++
      const seen = recorder('bystander update')
      rb.subscribe(seen)
      await withTimeout(ra.setWithAck({ round }), 3000, 'bystander write ack')
      await seen.until((d) => d && d.round === round)
      rb.unsubscribe(seen)
      assert.deepEqual(await ctx.serverState(name), { data: { round }, version: round + 1 })
      // and a new connection can still log in and read
      const c = await ctx.client(opts)
      assert.deepEqual(plain(await c.record.snapshot(name)), { round })
    }
  }
}

test('garbage bytes on the binary endpoint: error reply or close; other clients keep working', T, async () => {
  const bs = await bystanders()
  const raw = await rawSocket(ctx.server.url)
  raw.sendRaw(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x13, 0x37]))
  const outcome = await raw.expectErrorOrClose()
  assert.ok(outcome.closed || outcome.message, 'the garbage sender was told or cut off')
  raw.close()
  await bs.stillWork()
  assertNoErrors(...bs.clients)
})

test('a text frame on the binary endpoint: error reply or close; other clients keep working', T, async () => {
  const bs = await bystanders()
  const raw = await rawSocket(ctx.server.url)
  raw.sendRaw('this is not protobuf')
  await raw.expectErrorOrClose()
  raw.close()
  await bs.stillWork()
  assertNoErrors(...bs.clients)
})

test('garbage after login (undecodable frame, unknown topic): error replies; other clients keep working', T, async () => {
  const bs = await bystanders()
  const raw = await rawClient(ctx.server.url)
  let since = raw.inbox.length
  raw.sendRaw(Buffer.from([0xde, 0xad, 0xbe, 0xef]))
  const first = await raw.expectErrorOrClose(3000, since)
  if (!first.closed) {
    since = raw.inbox.length
    raw.sendRaw(Buffer.from([0x04, 0x10, 42, 0x1a, 0x00])) // a well-formed envelope with topic 42
    await raw.expectErrorOrClose(3000, since)
  }
  raw.close()
  await bs.stillWork()
  assertNoErrors(...bs.clients)
})

test('invalid JSON on the JSON endpoint: error reply or close; JSON clients keep working', T, async () => {
  const bs = await bystanders({ json: true })
  const raw = await rawSocket(ctx.server.jsonUrl, { json: true })
  raw.sendRaw('{not json')
  await raw.expectErrorOrClose()
  raw.close()
  await bs.stillWork()
  assertNoErrors(...bs.clients)
})

test('a whole-value write that is not an object or array is refused with INVALID_MESSAGE_DATA; the record is unchanged', T, async () => {
  const bs = await bystanders()
  const raw = await rawClient(ctx.server.url)
  const name = uniq('bad')
  raw.send({ topic: P.TOPIC.RECORD, action: P.RECORD_ACTION.SUBSCRIBECREATEANDREAD, names: [name], correlationId: '1' })
  await raw.expect((m) => m.action === P.RECORD_ACTION.READ_RESPONSE && m.name === name, 'READ_RESPONSE')
  const since = raw.inbox.length
  raw.send({ topic: P.TOPIC.RECORD, action: P.RECORD_ACTION.UPDATE, name, version: 1, data: '42' })
  const reply = await raw.expect((m, i) => raw.inbox.indexOf(m) >= since && m.topic === P.TOPIC.RECORD && m.name === name, 'reply to the bad UPDATE')
  assert.equal(actionName(reply), 'INVALID_MESSAGE_DATA')
  assert.equal(reply.originalAction, P.RECORD_ACTION.UPDATE)
  assert.deepEqual(await ctx.serverState(name), { data: {}, version: 0 })
  raw.close()
  await bs.stillWork()
  assertNoErrors(...bs.clients)
})

for (const [label, json] of [['binary', false], ['JSON', true]]) {
  test(`a message over maxMessageSize on the ${label} endpoint closes that connection with 1009; recordsync says why first; other clients keep working`, T, async () => {
    const bs = await bystanders()
    const raw = await rawClient(json ? ctx.server.jsonUrl : ctx.server.url, { json })
    const since = raw.inbox.length
    const name = uniq('huge')
    // 1 MiB of data: the message is over the suite's maxMessageSize (1048576 bytes).
    raw.send({ topic: P.TOPIC.RECORD, action: P.RECORD_ACTION.CREATEANDUPDATE, name, version: -1, data: JSON.stringify({ pad: 'x'.repeat(1024 * 1024) }) })
    await withTimeout((async () => { while (!raw.closed) await sleep(10) })(), 4000, 'the connection closed')
    assert.equal(raw.closed.code, 1009, 'message too big')
    const told = raw.inbox.slice(since).map(actionName)
    // deepstream (ws with maxPayload) only closes; recordsync names the error first.
    assert.deepEqual(told, TARGET === 'recordsync' ? ['MAXIMUM_MESSAGE_SIZE_EXCEEDED'] : [])
    assert.deepEqual(await ctx.serverState(name), { data: 'RECORD_NOT_FOUND', version: -1 })
    await bs.stillWork()
    assertNoErrors(...bs.clients)
  })
}

// The real deepstream 7.0.2 process dies on this input (an uncaught JSON.parse exception in its
// record write path), so the test exists only for recordsync: it is not skipped for deepstream,
// it is simply not registered there.
if (TARGET === 'recordsync') {
  test('a write whose data is not JSON gets an error to that client only; the server and other clients carry on (recordsync only: real deepstream 7.0.2 crashes)', T, async () => {
    const bs = await bystanders()
    const raw = await rawClient(ctx.server.url)
    const name = uniq('bad')
    raw.send({ topic: P.TOPIC.RECORD, action: P.RECORD_ACTION.SUBSCRIBECREATEANDREAD, names: [name], correlationId: '1' })
    await raw.expect((m) => m.action === P.RECORD_ACTION.READ_RESPONSE && m.name === name, 'READ_RESPONSE')
    const since = raw.inbox.length
    raw.send({ topic: P.TOPIC.RECORD, action: P.RECORD_ACTION.UPDATE, name, version: 1, data: '{not json' })
    raw.send({ topic: P.TOPIC.RECORD, action: P.RECORD_ACTION.PATCH, name, version: 1, path: 'a', data: '{not json' })
    await raw.expectErrorOrClose(3000, since)
    raw.close()
    await sleep(100)
    assert.deepEqual(await ctx.serverState(name), { data: {}, version: 0 })
    await bs.stillWork()
    assertNoErrors(...bs.clients)
  })
}
