// Three recordsync nodes serve one data set to ShareDB clients (issue 14 item 6, "on one node and
// across three"): they share PostgreSQL (127.0.0.1:5432, database `test`) and a bus (Redis, then
// NATS). Real `sharedb` 7 clients on different nodes create, edit, delete, query and share
// presence on the same documents.
//
// Runs only against recordsync: the reference ShareDB server here is one in-memory process (a
// ShareDB cluster needs a database and pub/sub adapters of its own), so every test is skipped,
// with that reason, for the peer. The suite's PostgreSQL target (RECORDSYNC_STORAGE set) skips
// them too: these nodes are on PostgreSQL whatever the target, so one run is enough.

import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { startServer } from '../../lib/server.mjs'
import {
  T, WAIT, SHAREDB_TARGET, useShareDB, uniqCollection, uniqId, cb, cbError, fetchDoc, subscribeDoc, submitOp,
  delDoc, created, docEvents, serverSnapshot, subscribeQuery, resultIds, presenceOn, submitPresence, plain, waitFor,
  sleep, assertNoErrors, prng, randomOp, randomOpDoc
} from '../../lib/sharedb.mjs'

const { logger } = createRequire(import.meta.url)('sharedb/lib/client')

const POSTGRES = process.env.RECORDSYNC_TEST_POSTGRES || 'postgres://postgres@127.0.0.1:5432/test'
const BUSES = {
  redis: process.env.RECORDSYNC_TEST_REDIS || 'redis://127.0.0.1:6379',
  nats: process.env.RECORDSYNC_TEST_NATS || 'nats://127.0.0.1:4222'
}

const skip = SHAREDB_TARGET !== 'recordsync'
  ? 'cluster: the target is the ShareDB peer, one in-memory process (these run against recordsync only)'
  : process.env.RECORDSYNC_STORAGE
    ? 'cluster: already run by the sharedb-recordsync target (these nodes are on PostgreSQL either way)'
    : false
const C = { timeout: 30000 }

const sdb = useShareDB()

// The client logs (and then fetches the whole document) when an op arrives for a version after
// the one it holds: "Invalid version from server". Collected here, so that a test can say none did.
const warnings = []
logger.setMethods({ warn: (...args) => warnings.push(args.map(String).join(' ')) })

for (const [busName, busUrl] of Object.entries(BUSES)) {
  describe(`ShareDB clients on three recordsync nodes, PostgreSQL and ${busName}`, { skip }, () => {
    const nodes = []
    before(async () => {
      for (let i = 0; i < 3; i++) {
        nodes.push(await startServer({ target: 'recordsync', extraArgs: ['--storage', POSTGRES, '--cluster', busUrl] }))
      }
    })
    after(async () => {
      for (const n of nodes) await n.stop()
    })
    /** A connected ShareDB client on node i (0-based), closed after the test. */
    const on = (i) => sdb.one(nodes[i].sharedbUrl)

    test('a document created on node 1 is fetched on node 3, where a second create is refused with ERR_DOC_ALREADY_CREATED', T, async () => {
      const [one, three] = [await on(0), await on(2)]
      const c = uniqCollection('cl')
      const id = uniqId()
      await created(one, c, id, { title: 'from node 1', n: 1 })
      const doc = three.get(c, id)
      await fetchDoc(doc)
      assert.equal(doc.version, 1)
      assert.deepEqual(plain(doc.data), { title: 'from node 1', n: 1 })
      // a client on node 3 that has not fetched it creates it too: the server refuses
      const raced = (await on(2)).get(c, id)
      const refused = await cbError((done) => raced.create({ other: true }, done), 'create on node 3 without a fetch')
      assert.equal(refused.code, 'ERR_DOC_ALREADY_CREATED')
      assert.deepEqual(await serverSnapshot(c, id, nodes[1].sharedbUrl), { v: 1, type: 'http://sharejs.org/types/JSONv0', data: { title: 'from node 1', n: 1 } })
      assertNoErrors(one)
    })

    test('a subscriber on node 3 gets node 1\'s ops in version order, and a delete on node 3 reaches node 1', T, async () => {
      const [one, three] = [await on(0), await on(2)]
      const c = uniqCollection('cl')
      const id = uniqId()
      const d1 = await created(one, c, id, { n: 0, log: [] })
      await subscribeDoc(d1)
      const d3 = three.get(c, id)
      await subscribeDoc(d3)
      const ev3 = docEvents(d3)
      for (let i = 1; i <= 10; i++) await submitOp(d1, [{ p: ['n'], na: 1 }, { p: ['log', i - 1], li: i }])
      await ev3.waitOps(10)
      assert.equal(d3.version, 11)
      assert.deepEqual(plain(d3.data), { n: 10, log: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] })
      // the ops arrived whole and in order
      assert.deepEqual(ev3.remoteOps().map((o) => o.op[1].li), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])

      const ev1 = docEvents(d1)
      await delDoc(d3)
      await waitFor(() => ev1.dels.length === 1, WAIT, 'the delete reaches node 1')
      assert.equal(d1.type, null)
      assert.equal(d1.version, 12)
      // history survives the delete, on every node
      const snap = await cb((done) => (three.fetchSnapshot(c, id, 6, done)), 'fetchSnapshot v6 on node 3')
      assert.deepEqual(plain(snap.data), { n: 5, log: [1, 2, 3, 4, 5] })
      assert.equal(snap.v, 6)
      assertNoErrors(one, three)
    })

    for (const seed of [11, 12]) {
      test(`clients on all three nodes submitting random json0 ops concurrently converge (seed ${seed})`, C, async () => {
        const rand = prng(seed)
        const conns = [await on(0), await on(1), await on(2)]
        const c = uniqCollection('clconv')
        const id = uniqId()
        await created(conns[0], c, id, randomOpDoc())
        const docs = conns.map((conn) => conn.get(c, id))
        for (const d of docs) await subscribeDoc(d)
        warnings.length = 0
        const errors = []
        for (let round = 0; round < 20; round++) {
          for (const [i, d] of docs.entries()) {
            const op = randomOp(rand, d.data, 'xyz'[i])
            d.submitOp(op, (err) => { if (err) errors.push(`${err.code}: ${err.message} for ${JSON.stringify(op)}`) })
          }
          if (rand() < 0.3) await sleep(Math.floor(rand() * 4))
        }
        for (const d of docs) await cb((done) => d.whenNothingPending(done), 'nothing pending', 15000)
        assert.deepEqual(errors, [], `seed ${seed}: rejected ops`)
        const server = await serverSnapshot(c, id, nodes[0].sharedbUrl)
        assert.ok(server.v > 1)
        await waitFor(() => docs.every((d) => d.version === server.v), 10000,
          () => `seed ${seed}: all at v${server.v} (${docs.map((d) => d.version)})`)
        for (const [i, d] of docs.entries()) assert.deepEqual(plain(d.data), server.data, `seed ${seed}: client on node ${i + 1} differs`)
        for (const n of [1, 2]) assert.deepEqual(await serverSnapshot(c, id, nodes[n].sharedbUrl), server, `node ${n + 1} serves the same snapshot`)
        // every client was sent every op in version order: none had to fetch to fill a gap
        assert.deepEqual(warnings.splice(0), [], `the client warned of ops out of order: ${JSON.stringify(conns.map((k) => k.received.filter((m) => m.a === 'op').map((m) => [m.v, m.src && m.src.slice(0, 4), m.seq, m.op === undefined ? 'x' : m.op.length])))}`)
        assertNoErrors(...conns)
      })
    }

    test('a live query on node 3 follows documents created and changed on node 1', T, async () => {
      const [one, three] = [await on(0), await on(2)]
      const c = uniqCollection('clq')
      await created(one, c, 'a', { color: 'red', rank: 2 })
      const q = await subscribeQuery(three, c, { color: 'red', $sort: { rank: 1 } })
      assert.deepEqual(resultIds(q), ['a'])
      await created(one, c, 'b', { color: 'red', rank: 1 })
      await waitFor(() => resultIds(q).join() === 'b,a', WAIT, () => `b inserted first (${resultIds(q)})`)
      const b = one.get(c, 'b')
      await submitOp(b, [{ p: ['rank'], na: 5 }])
      await waitFor(() => resultIds(q).join() === 'a,b', WAIT, () => `b moved after a (${resultIds(q)})`)
      await submitOp(b, [{ p: ['color'], od: 'red', oi: 'blue' }])
      await waitFor(() => resultIds(q).join() === 'a', WAIT, () => `b removed (${resultIds(q)})`)
      assert.deepEqual(q.events.filter((e) => e.type !== 'extra').map((e) => e.type), ['insert', 'move', 'remove'])
      assertNoErrors(one, three)
    })

    test('channel presence submitted on node 1 reaches a subscriber on node 3, and is cleared when node 1\'s client leaves', T, async () => {
      const [one, three] = [await on(0), await on(2)]
      const ch = uniqId('ch')
      const p1 = await presenceOn(one, ch)
      const p3 = await presenceOn(three, ch)
      const local = p1.create('cursor-1')
      await submitPresence(local, { line: 7 })
      await p3.waitFor('cursor-1', { line: 7 })
      one.close()
      await p3.waitFor('cursor-1', null)
      assert.deepEqual(plain(p3.remotePresences), {})
      assertNoErrors(three)
    })
  })
}
