// Numbers come back exactly as JSON.stringify wrote them: thousands of random doubles (from
// random bits: subnormals, huge and tiny values, 17 significant digits) and the extremes,
// compared bit for bit on every path a client reads them from: a binary and a JSON-transport
// subscriber, a path write inside a large value (PATCH), a third client's snapshot and head,
// a fresh subscriber, and (recordsync only: the reference deepstream keeps nothing) a restart.
// Across nodes, on PostgreSQL and the bus: cluster.test.mjs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withTimeout, waitFor, uniq } from '../lib/client.mjs'
import { useServer, assertNoErrors, TARGET } from '../lib/suite.mjs'
import { TARGET_IS_DURABLE } from '../lib/server.mjs'
import { numberDocument, randomDoubles, assertSameNumbers, EXTREMES } from '../lib/numbers.mjs'

const T = { timeout: 60000 }
const ctx = useServer()

const ready = (...records) => withTimeout(Promise.all(records.map((r) => r.whenReady())), 5000, 'records ready')

/** Writes a 256 KiB document of doubles, then path writes into it; returns what was written. */
async function writeNumbers (writer, name) {
  const { value, count } = numberDocument(256 * 1024)
  const record = writer.record.getRecord(name)
  await ready(record)
  // The client keeps what it is given: write a copy, so that `value` stays ours.
  await withTimeout(record.setWithAck(structuredClone(value)), 10000, 'the whole write')
  // Path writes (PATCH) into the large value: one number each, the rest must stay as it was.
  const patches = randomDoubles(200).concat(EXTREMES)
  patches.forEach((x, i) => {
    const row = (i * 7) % value.rows.length
    const col = (i * 13) % value.rows[row].length
    value.rows[row][col] = x
    record.set(`rows[${row}][${col}]`, x)
  })
  await withTimeout(record.setWithAck('nested.last', -1.2345678901234567e-300), 10000, 'the last path write')
  value.nested.last = -1.2345678901234567e-300
  return { value, count, version: 2 + patches.length, record }
}

test(`numbers: ${TARGET} delivers thousands of random doubles bit for bit to binary and JSON subscribers, after path writes, in snapshots and to a fresh subscriber`, T, async () => {
  const [writer, binary, third] = await ctx.clients(3)
  const [json] = await ctx.clients(1, { json: true })
  const name = uniq('numbers')
  const rb = binary.record.getRecord(name)
  const rj = json.record.getRecord(name)
  await ready(rb, rj)
  const { value, count, version, record } = await writeNumbers(writer, name)
  assert.ok(count > 10000, `thousands of numbers (${count})`)

  for (const [who, r] of [['binary subscriber', rb], ['JSON subscriber', rj]]) {
    await waitFor(() => r.version === version, 10000, `${who} at version ${version}`)
    assertSameNumbers(r.get(), value, who)
  }
  const snapshot = await withTimeout(third.record.snapshot(name), 5000, 'snapshot')
  assertSameNumbers(snapshot, value, 'snapshot')
  assert.strictEqual(await third.record.head(name), version)
  assert.strictEqual(await third.record.has(name), true)

  const [fresh] = await ctx.clients(1)
  const rf = fresh.record.getRecord(name)
  await ready(rf)
  assert.strictEqual(rf.version, version)
  assertSameNumbers(rf.get(), value, 'fresh subscriber')
  assertSameNumbers(record.get(), value, 'the writer\'s own copy')
  assertNoErrors(writer, binary, json, third, fresh)
})

if (TARGET_IS_DURABLE) {
  test('numbers: random doubles survive a restart bit for bit (recordsync only: the reference deepstream keeps nothing)', T, async () => {
    const [writer] = await ctx.clients(1)
    const name = uniq('numbers')
    const { value, version } = await writeNumbers(writer, name)
    writer.close()
    await ctx.server.restart()
    const [reader] = await ctx.clients(1)
    const snapshot = await withTimeout(reader.record.snapshot(name), 5000, 'snapshot after restart')
    assertSameNumbers(snapshot, value, 'after restart')
    assert.strictEqual(await reader.record.head(name), version)
    assertNoErrors(reader)
  })
}
