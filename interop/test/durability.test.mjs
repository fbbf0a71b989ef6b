// Durability: acknowledged writes survive a restart (SIGTERM) and a crash (SIGKILL).
//
// Registered only for recordsync. The deepstream server used as the reference runs in memory
// (no storage plugin), so it keeps nothing across restarts: these tests are not skipped for
// it, they simply do not exist there.

import { test, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { TARGET_IS_DURABLE, startServer } from '../lib/server.mjs'
import { clientPool, withTimeout, recorder, uniq } from '../lib/client.mjs'
import { plain, assertNoErrors } from '../lib/suite.mjs'

const T = { timeout: 30000 }

if (TARGET_IS_DURABLE) {
  let server
  const pool = clientPool(() => server)
  before(async () => { server = await startServer() })
  afterEach(() => pool.closeAll())
  after(async () => { pool.closeAll(); if (server) await server.stop() })

  /** Writes a known set of records with acknowledgements; returns what the server must keep. */
  async function writeFixture () {
    const [a, b] = await pool.open(2)
    const names = { rec: uniq('durable'), setData: uniq('durable'), list: uniq('durable'), deleted: uniq('durable'), fresh: uniq('durable') }
    const rec = a.record.getRecord(names.rec)
    await withTimeout(rec.whenReady(), 4000, 'ready')
    await rec.setWithAck({ title: 'kept', tags: ['x'] })
    await rec.setWithAck('pets[1].fur.color', 'brown')
    await rec.setWithAck('count', 3)
    await rec.eraseWithAck('tags')
    await b.record.setDataWithAck(names.setData, { by: 'setData' })
    const list = b.record.getList(names.list)
    await withTimeout(list.whenReady(), 4000, 'list ready')
    await list.setEntriesWithAck(['one', 'two'])
    const doomed = a.record.getRecord(names.deleted)
    await withTimeout(doomed.whenReady(), 4000, 'ready')
    await doomed.setWithAck({ gone: true })
    await withTimeout(doomed.delete(), 4000, 'delete')
    const fresh = b.record.getRecord(names.fresh) // created by subscribing: {} at version 0
    await withTimeout(fresh.whenReady(), 4000, 'ready')
    assertNoErrors(a, b)
    pool.closeAll()
    return {
      names,
      expected: {
        [names.rec]: { data: { title: 'kept', pets: [null, { fur: { color: 'brown' } }], count: 3 }, version: 4 },
        [names.setData]: { data: { by: 'setData' }, version: 1 },
        [names.list]: { data: ['one', 'two'], version: 1 },
        // created by subscribing only: stored before the subscriber was told it exists
        [names.fresh]: { data: {}, version: 0 }
      }
    }
  }

  async function assertSurvived ({ names, expected }) {
    const [a, b] = await pool.open(2)
    for (const [name, want] of Object.entries(expected)) {
      const data = await withTimeout(a.record.snapshot(name).catch((e) => e), 3000, `snapshot ${name}`)
      assert.deepEqual({ data: plain(data), version: await a.record.head(name) }, want, `record ${name} after restart`)
    }
    assert.strictEqual(await a.record.has(names.deleted), false, 'a deleted record stays deleted')
    // subscriptions and further writes carry on from the stored version
    const ra = a.record.getRecord(names.rec)
    const rb = b.record.getRecord(names.rec)
    await withTimeout(Promise.all([ra.whenReady(), rb.whenReady()]), 4000, 'ready after restart')
    assert.strictEqual(rb.version, 4)
    assert.deepEqual(plain(rb.get()), expected[names.rec].data)
    const seen = recorder('B update')
    rb.subscribe(seen)
    await ra.setWithAck('count', 4)
    assert.deepEqual(plain((await seen.nth(1))[0]).count, 4)
    assert.strictEqual(rb.version, 5)
    const lb = b.record.getList(names.list)
    await withTimeout(lb.whenReady(), 4000, 'list ready')
    assert.deepEqual(lb.getEntries(), ['one', 'two'])
    assertNoErrors(a, b)
  }

  test('durability (recordsync only; in-memory deepstream keeps nothing): acknowledged writes survive restart() (SIGTERM)', T, async () => {
    const fixture = await writeFixture()
    await server.restart()
    await assertSurvived(fixture)
  })

  test('durability (recordsync only; in-memory deepstream keeps nothing): acknowledged writes survive kill() (SIGKILL)', T, async () => {
    const fixture = await writeFixture()
    await server.kill()
    await server.restart()
    await assertSurvived(fixture)
  })

  test('durability (recordsync only): a restart keeps the same port and data dir', T, async () => {
    const { port, dataDir, url } = server
    await server.restart()
    assert.equal(server.port, port)
    assert.equal(server.dataDir, dataDir)
    assert.equal(server.url, url)
    const [a, b] = await pool.open(2)
    const name = uniq('durable')
    await a.record.setDataWithAck(name, { ok: true })
    assert.deepEqual(plain(await b.record.snapshot(name)), { ok: true })
  })
}
