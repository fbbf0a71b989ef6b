// Convergence under concurrency: three real clients submit random json0 ops (every component kind,
// each computed on the client's own current copy) without waiting for one another; the server
// must transform each against what its submitter missed so that everyone ends with the server's
// snapshot. Seeded, so a failure names the seed that reproduces it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  T, WAIT, useShareDB, uniqCollection, uniqId, cb, subscribeDoc, created, serverSnapshot, plain, waitFor, sleep, assertNoErrors,
  prng, randomOp, randomOpDoc
} from '../../lib/sharedb.mjs'

const sdb = useShareDB()

for (const seed of [1, 2, 3]) {
  test(`three clients submitting random json0 ops concurrently converge on the server's snapshot (seed ${seed})`, T, async () => {
    const rand = prng(seed)
    const conns = await sdb.connect(3)
    const c = uniqCollection('conv')
    const id = uniqId()
    await created(conns[0], c, id, randomOpDoc())
    const docs = conns.map((conn) => conn.get(c, id))
    for (const d of docs) await subscribeDoc(d)
    const errors = []
    for (let round = 0; round < 25; round++) {
      for (const [i, d] of docs.entries()) {
        const op = randomOp(rand, d.data, 'abc'[i])
        d.submitOp(op, (err) => { if (err) errors.push(`${err.code}: ${err.message} for ${JSON.stringify(op)}`) })
      }
      if (rand() < 0.3) await sleep(Math.floor(rand() * 4))
    }
    for (const d of docs) await cb((done) => d.whenNothingPending(done), 'nothing pending', 10000)
    assert.deepEqual(errors, [], `seed ${seed}: rejected ops`)
    const server = await serverSnapshot(c, id)
    await waitFor(() => docs.every((d) => d.version === server.v), WAIT, () => `seed ${seed}: all at v${server.v} (${docs.map((d) => d.version)})`)
    for (const [i, d] of docs.entries()) assert.deepEqual(plain(d.data), server.data, `seed ${seed}: client ${i} differs from the server`)
    assert.ok(server.v > 1)
    assertNoErrors(...conns)
  })
}
