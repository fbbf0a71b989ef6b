// Convergence under concurrency: three real clients submit random json0 ops (every component kind,
// each computed on the client's own current copy) without waiting for one another; the server
// must transform each against what its submitter missed so that everyone ends with the server's
// snapshot. Seeded, so a failure names the seed that reproduces it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  T, WAIT, useShareDB, uniqCollection, uniqId, cb, subscribeDoc, created, serverSnapshot, plain, waitFor, sleep, assertNoErrors
} from '../../lib/sharedb.mjs'

const sdb = useShareDB()

function prng (seed) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6D2B79F5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A random op valid on `data` (shape {list, text, n, obj}). BMP characters only. */
function randomOp (rand, data, tag) {
  const int = (n) => Math.floor(rand() * n)
  const word = () => `${tag}${int(100)}`
  const list = data.list
  const text = data.text
  switch (int(8)) {
    case 0: return [{ p: ['list', int(list.length + 1)], li: word() }]
    case 1: if (list.length) { const i = int(list.length); return [{ p: ['list', i], ld: list[i] }] } break
    case 2: if (list.length > 1) return [{ p: ['list', int(list.length)], lm: int(list.length) }]; break
    case 3: return [{ p: ['text', int(text.length + 1)], si: word() }]
    case 4: if (text.length) { const at = int(text.length); const len = 1 + int(Math.min(3, text.length - at)); return [{ p: ['text', at], sd: text.slice(at, at + len) }] } break
    case 5: return [{ p: ['n'], na: int(21) - 10 }]
    case 6: {
      const k = `k${int(4)}`
      if (k in data.obj) return rand() < 0.5 ? [{ p: ['obj', k], od: data.obj[k] }] : [{ p: ['obj', k], od: data.obj[k], oi: word() }]
      return [{ p: ['obj', k], oi: word() }]
    }
    case 7: if (list.length) { const i = int(list.length); return [{ p: ['list', i], ld: list[i], li: word() }, { p: ['n'], na: 1 }] } break
  }
  return [{ p: ['n'], na: 1 }]
}

for (const seed of [1, 2, 3]) {
  test(`three clients submitting random json0 ops concurrently converge on the server's snapshot (seed ${seed})`, T, async () => {
    const rand = prng(seed)
    const conns = await sdb.connect(3)
    const c = uniqCollection('conv')
    const id = uniqId()
    await created(conns[0], c, id, { list: ['a', 'b', 'c'], text: 'hello world', n: 0, obj: { k0: 'x' } })
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
