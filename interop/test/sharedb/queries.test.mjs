// ShareDB queries with Mongo-style filters (the reference peer uses sharedb-mingo-memory):
// createFetchQuery over every operator the issue lists, and createSubscribeQuery live updates
// (insert / remove / move diffs, ops on result docs, $count extra) as documents change.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import {
  T, WAIT, useShareDB, connectShareDB, uniqCollection, cb, fetchDoc, submitOp, createDoc, delDoc, created,
  fetchQuery, subscribeQuery, resultIds, plain, waitFor, sleep, assertNoErrors, receivedOf
} from '../../lib/sharedb.mjs'

const sdb = useShareDB()

// One collection of fixed documents for the fetch queries (written once, read by every test).
const C = uniqCollection('people')
const DOCS = {
  ann: { name: 'ann', age: 30, tags: ['x', 'y'], addr: { city: 'paris' }, items: [{ k: 'a', n: 1 }, { k: 'b', n: 5 }] },
  bob: { name: 'bob', age: 25, tags: ['y'], addr: { city: 'rome' }, items: [{ k: 'a', n: 7 }], nick: 'b' },
  cat: { name: 'cat', age: 41, tags: [], addr: { city: 'paris' }, items: [], nick: null },
  dan: { name: 'dan', age: 19, tags: ['x'], addr: { city: 'oslo' }, items: [{ k: 'c', n: 2 }] },
  eve: { name: 'eve', age: 35, tags: ['z', 'x', 'y'], items: [{ k: 'b', n: 9 }] }
}
const id = (name) => `p-${name}`

before(async () => {
  const conn = await connectShareDB()
  try {
    for (const [name, data] of Object.entries(DOCS)) await created(conn, C, id(name), data)
    // a deleted document never shows up in results
    const gone = await created(conn, C, id('gone'), { name: 'gone', age: 50, tags: ['x'] })
    await delDoc(gone)
  } finally {
    conn.close()
  }
})

const sortedIds = (query) => resultIds(query).slice().sort()
const ids = (...names) => names.map(id).sort()

const FILTERS = [
  [{}, ['ann', 'bob', 'cat', 'dan', 'eve']],
  [{ name: 'bob' }, ['bob']],
  [{ age: 30 }, ['ann']],
  [{ age: { $gt: 30 } }, ['cat', 'eve']],
  [{ age: { $gte: 30 } }, ['ann', 'cat', 'eve']],
  [{ age: { $lt: 25 } }, ['dan']],
  [{ age: { $lte: 25 } }, ['bob', 'dan']],
  [{ age: { $gt: 20, $lt: 35 } }, ['ann', 'bob']],
  [{ age: { $ne: 30 } }, ['bob', 'cat', 'dan', 'eve']],
  [{ name: { $in: ['ann', 'dan', 'zed'] } }, ['ann', 'dan']],
  [{ name: { $nin: ['ann', 'bob'] } }, ['cat', 'dan', 'eve']],
  [{ nick: { $exists: true } }, ['bob', 'cat']],
  [{ nick: { $exists: false } }, ['ann', 'dan', 'eve']],
  [{ nick: null }, ['ann', 'cat', 'dan', 'eve']],
  [{ 'addr.city': 'paris' }, ['ann', 'cat']],
  [{ 'addr.city': { $in: ['rome', 'oslo'] } }, ['bob', 'dan']],
  [{ tags: 'x' }, ['ann', 'dan', 'eve']],
  [{ tags: { $in: ['z', 'q'] } }, ['eve']],
  [{ 'items.k': 'a' }, ['ann', 'bob']],
  [{ items: { $elemMatch: { k: 'b', n: { $gt: 6 } } } }, ['eve']],
  [{ items: { $elemMatch: { n: { $lt: 3 } } } }, ['ann', 'dan']],
  [{ $or: [{ age: { $lt: 20 } }, { 'addr.city': 'rome' }] }, ['bob', 'dan']],
  [{ $and: [{ age: { $gt: 20 } }, { tags: 'y' }] }, ['ann', 'bob', 'eve']],
  [{ $nor: [{ tags: 'x' }, { age: { $gt: 40 } }] }, ['bob']],
  [{ age: { $not: { $gt: 30 } } }, ['ann', 'bob', 'dan']],
  [{ name: 'nobody' }, []]
]

test('fetch queries: equality, dotted paths, array membership and every comparison / logical operator', T, async () => {
  const a = await sdb.one()
  for (const [q, names] of FILTERS) {
    const query = await fetchQuery(a, C, q).catch((e) => { throw new Error(`query ${JSON.stringify(q)}: ${e.code}: ${e.message}`) })
    assert.deepEqual(sortedIds(query), ids(...names), `query ${JSON.stringify(q)}`)
    for (const doc of query.results) {
      assert.deepEqual(plain(doc.data), DOCS[doc.id.slice(2)], `data of ${doc.id} in ${JSON.stringify(q)}`)
      assert.equal(doc.version, 1)
    }
  }
  // $size: sharedb-mingo-memory (mingo 6.2.1) throws on it when the collection holds a deleted doc,
  // so it is checked on a collection without one
  const sc = uniqCollection('size')
  for (const [name, data] of Object.entries(DOCS)) await created(a, sc, id(name), data)
  for (const [q, names] of [[{ tags: { $size: 2 } }, ['ann']], [{ tags: { $size: 0 } }, ['cat']], [{ items: { $size: 1 }, age: { $lt: 30 } }, ['bob', 'dan']]]) {
    const query = await fetchQuery(a, sc, q).catch((e) => { throw new Error(`query ${JSON.stringify(q)}: ${e.code}: ${e.message}`) })
    assert.deepEqual(sortedIds(query), ids(...names), `query ${JSON.stringify(q)}`)
  }

  // the wire: {a:'qf', id, data:[{d, v, data}]} (json0: no type; no extra without $count)
  const reply = a.received.filter((m) => m.a === 'qf')[1]
  assert.deepEqual(reply, { a: 'qf', id: reply.id, data: [{ d: id('bob'), v: 1, data: DOCS.bob }] })
  const sent = a.sent.filter((m) => m.a === 'qf')[1]
  assert.deepEqual(sent, { a: 'qf', id: reply.id, c: C, q: { name: 'bob' } })
  assertNoErrors(a)
})

test('fetch queries: $sort (both ways, two keys), $skip, $limit, $count', T, async () => {
  const a = await sdb.one()
  const order = async (q) => resultIds(await fetchQuery(a, C, q))
  assert.deepEqual(await order({ $sort: { age: 1 } }), ['dan', 'bob', 'ann', 'eve', 'cat'].map(id))
  assert.deepEqual(await order({ $sort: { age: -1 } }), ['cat', 'eve', 'ann', 'bob', 'dan'].map(id))
  assert.deepEqual(await order({ $sort: { name: -1 } }), ['eve', 'dan', 'cat', 'bob', 'ann'].map(id))
  assert.deepEqual(await order({ tags: 'x', $sort: { age: 1 } }), ['dan', 'ann', 'eve'].map(id))
  assert.deepEqual(await order({ $sort: { age: 1 }, $skip: 1, $limit: 2 }), ['bob', 'ann'].map(id))
  assert.deepEqual(await order({ $sort: { age: -1 }, $limit: 1 }), ['cat'].map(id))
  assert.deepEqual(await order({ $sort: { age: 1 }, $skip: 4 }), ['cat'].map(id))
  assert.deepEqual(await order({ $sort: { age: 1 }, $skip: 9 }), [])
  // two keys: ties on the first are ordered by the second
  const tc = uniqCollection('twokeys')
  for (const [name, g, n] of [['w', 1, 3], ['x', 2, 2], ['y', 1, 1], ['z', 2, 5]]) await created(a, tc, `t-${name}`, { g, n })
  assert.deepEqual(resultIds(await fetchQuery(a, tc, { $sort: { g: 1, n: -1 } })), ['t-w', 't-y', 't-z', 't-x'])
  assert.deepEqual(resultIds(await fetchQuery(a, tc, { $sort: { g: -1, n: 1 } })), ['t-x', 't-z', 't-y', 't-w'])
  assert.deepEqual(resultIds(await fetchQuery(a, tc, { g: 2, $sort: { n: 1 }, $limit: 1 })), ['t-x'])

  const count = await fetchQuery(a, C, { age: { $gt: 20 }, $count: true })
  assert.deepEqual(count.results, [])
  assert.equal(count.extra, 4)
  const countReply = a.received.filter((m) => m.a === 'qf').pop()
  assert.deepEqual(countReply, { a: 'qf', id: countReply.id, data: [], extra: 4 })
  const none = await fetchQuery(a, C, { name: 'nobody', $count: true })
  assert.equal(none.extra, 0)
  assertNoErrors(a)
})

test('live query (unsorted): insert at the end when a doc starts matching, remove when it stops, ops on results, create and delete', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection('live')
  const docs = {}
  for (const [name, age] of [['a1', 31], ['a2', 10], ['a3', 45], ['a4', 20]]) docs[name] = await created(a, c, `q-${name}`, { name, age })
  const query = await subscribeQuery(b, c, { age: { $gt: 30 } })
  assert.deepEqual(sortedIds(query), ['q-a1', 'q-a3'])
  const start = resultIds(query)
  const qs = b.sent.find((m) => m.a === 'qs')
  assert.deepEqual(qs, { a: 'qs', id: qs.id, c, q: { age: { $gt: 30 } } })
  // the reply: {a:'qs', id, data:[{d, v, data}]}
  const qsReply = b.received.find((m) => m.a === 'qs')
  assert.deepEqual({ ...qsReply, data: qsReply.data.slice().sort((x, y) => x.d < y.d ? -1 : 1) },
    { a: 'qs', id: qs.id, data: [{ d: 'q-a1', v: 1, data: { name: 'a1', age: 31 } }, { d: 'q-a3', v: 1, data: { name: 'a3', age: 45 } }] })
  const diffs = () => b.received.filter((m) => m.a === 'q' && m.id === qs.id && m.diff).map((m) => m.diff)

  // a2 starts matching: inserted at the end, with its current snapshot
  await submitOp(docs.a2, [{ p: ['age'], na: 50 }])
  await waitFor(() => query.results.length === 3, WAIT, () => `a2 inserted (${resultIds(query)})`)
  assert.deepEqual(resultIds(query), [...start, 'q-a2'])
  assert.deepEqual(diffs()[0], [{ type: 'insert', index: 2, values: [{ d: 'q-a2', v: 2, data: { name: 'a2', age: 60 } }] }])
  assert.deepEqual(query.events.filter((e) => e.type === 'insert'), [{ type: 'insert', ids: ['q-a2'], index: 2 }])
  assert.deepEqual(plain(query.results[2].data), { name: 'a2', age: 60 })

  // an op on a result doc that keeps it matching: the op reaches the subscriber, no diff
  await submitOp(docs.a1, [{ p: ['extra'], oi: true }])
  const r1 = query.results.find((d) => d.id === 'q-a1')
  await waitFor(() => r1.version === 2, WAIT, 'op on a1 reaches the query subscriber')
  assert.deepEqual(plain(r1.data), { name: 'a1', age: 31, extra: true })
  assert.equal(diffs().length, 1)
  assert.deepEqual(receivedOf(b, 'op', { c, d: 'q-a1' }).map((m) => [m.v, m.op]), [[1, [{ p: ['extra'], oi: true }]]])

  // a1 stops matching: removed from its index; the op that removed it is sent too
  const idx = resultIds(query).indexOf('q-a1')
  await submitOp(docs.a1, [{ p: ['age'], na: -20 }])
  await waitFor(() => !resultIds(query).includes('q-a1'), WAIT, 'a1 removed')
  assert.deepEqual(diffs()[1], [{ type: 'remove', index: idx, howMany: 1 }])
  assert.deepEqual(query.events.filter((e) => e.type === 'remove'), [{ type: 'remove', ids: ['q-a1'], index: idx }])
  assert.deepEqual(receivedOf(b, 'op', { c, d: 'q-a1' }).map((m) => m.v), [1, 2])

  // a new doc that matches
  await created(a, c, 'q-a5', { name: 'a5', age: 99 })
  await waitFor(() => resultIds(query).includes('q-a5'), WAIT, 'a5 inserted')
  assert.deepEqual(diffs()[2], [{ type: 'insert', index: 2, values: [{ d: 'q-a5', v: 1, data: { name: 'a5', age: 99 } }] }])
  // a deleted doc leaves
  const idx3 = resultIds(query).indexOf('q-a3')
  await delDoc(docs.a3)
  await waitFor(() => !resultIds(query).includes('q-a3'), WAIT, 'a3 removed')
  assert.deepEqual(diffs()[3], [{ type: 'remove', index: idx3, howMany: 1 }])
  // a change to a doc outside the results: nothing
  await submitOp(docs.a4, [{ p: ['age'], na: 1 }])
  await sleep(200)
  assert.equal(diffs().length, 4)
  assert.equal(receivedOf(b, 'op', { c, d: 'q-a4' }).length, 0)
  assert.deepEqual(sortedIds(query), ['q-a2', 'q-a5'])

  // qu ends it
  await cb((done) => query.destroy(done), 'query destroy')
  assert.deepEqual(b.sent.filter((m) => m.a === 'qu'), [{ a: 'qu', id: qs.id }])
  await created(a, c, 'q-a6', { name: 'a6', age: 77 })
  await sleep(200)
  assert.equal(diffs().length, 4)
  assertNoErrors(a, b)
})

test('live query (sorted): rank changes arrive as arraydiff moves; a $limit window as remove + insert', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection('sorted')
  const docs = {}
  for (const [name, score] of [['s1', 10], ['s2', 20], ['s3', 30], ['s4', 40]]) docs[name] = await created(a, c, `r-${name}`, { name, score })
  const query = await subscribeQuery(b, c, { $sort: { score: 1 } })
  assert.deepEqual(resultIds(query), ['r-s1', 'r-s2', 'r-s3', 'r-s4'])
  const top = await subscribeQuery(b, c, { $sort: { score: -1 }, $limit: 2 })
  assert.deepEqual(resultIds(top), ['r-s4', 'r-s3'])
  const [qid, tid] = b.sent.filter((m) => m.a === 'qs').map((m) => m.id)
  const diffs = (id) => b.received.filter((m) => m.a === 'q' && m.id === id && m.diff).map((m) => m.diff)
  const snap = (name, v, score) => ({ d: `r-${name}`, v, data: { name, score } })
  // ShareDB re-polls a sorted query and diffs the id lists with the `arraydiff` package: the
  // diffs below are that algorithm's (a move of the shortest run it finds, not of the changed doc)

  // s1 10 -> 35: [s1 s2 s3 s4] -> [s2 s3 s1 s4]; top 2 [s4 s3] -> [s4 s1]
  await submitOp(docs.s1, [{ p: ['score'], na: 25 }])
  await waitFor(() => diffs(qid).length === 1 && diffs(tid).length === 1, WAIT, () => `diffs after s1 (${JSON.stringify(diffs(qid))} ${JSON.stringify(diffs(tid))})`)
  assert.deepEqual(resultIds(query), ['r-s2', 'r-s3', 'r-s1', 'r-s4'])
  assert.deepEqual(diffs(qid)[0], [{ type: 'move', from: 1, to: 0, howMany: 2 }])
  assert.deepEqual(query.events, [{ type: 'move', ids: ['r-s2', 'r-s3'], from: 1, to: 0 }])
  assert.deepEqual(resultIds(top), ['r-s4', 'r-s1'])
  assert.deepEqual(diffs(tid)[0], [{ type: 'remove', index: 1, howMany: 1 }, { type: 'insert', index: 1, values: [snap('s1', 2, 35)] }])
  assert.deepEqual(top.events, [{ type: 'remove', ids: ['r-s3'], index: 1 }, { type: 'insert', ids: ['r-s1'], index: 1 }])

  // s2 20 -> 120: [s2 s3 s1 s4] -> [s3 s1 s4 s2]; top [s4 s1] -> [s2 s4]
  await submitOp(docs.s2, [{ p: ['score'], na: 100 }])
  await waitFor(() => diffs(qid).length === 2 && diffs(tid).length === 2, WAIT, 'diffs after s2')
  assert.deepEqual(resultIds(query), ['r-s3', 'r-s1', 'r-s4', 'r-s2'])
  assert.deepEqual(diffs(qid)[1], [{ type: 'move', from: 1, to: 0, howMany: 3 }])
  assert.deepEqual(resultIds(top), ['r-s2', 'r-s4'])
  assert.deepEqual(diffs(tid)[1], [{ type: 'remove', index: 1, howMany: 1 }, { type: 'insert', index: 0, values: [snap('s2', 2, 120)] }])

  // a new doc in the middle of the full list, below the top 2
  await created(a, c, 'r-s5', { name: 's5', score: 38 })
  await waitFor(() => diffs(qid).length === 3, WAIT, 'diff after s5')
  assert.deepEqual(resultIds(query), ['r-s3', 'r-s1', 'r-s5', 'r-s4', 'r-s2'])
  assert.deepEqual(diffs(qid)[2], [{ type: 'insert', index: 2, values: [snap('s5', 1, 38)] }])

  // s4 40 -> 1: one doc moves from 3 to the front; s5 enters the top 2
  await submitOp(docs.s4, [{ p: ['score'], na: -39 }])
  await waitFor(() => diffs(qid).length === 4 && diffs(tid).length === 3, WAIT, 'diffs after s4')
  assert.deepEqual(resultIds(query), ['r-s4', 'r-s3', 'r-s1', 'r-s5', 'r-s2'])
  assert.deepEqual(diffs(qid)[3], [{ type: 'move', from: 3, to: 0, howMany: 1 }])
  assert.deepEqual(resultIds(top), ['r-s2', 'r-s5'])
  assert.deepEqual(diffs(tid)[2], [{ type: 'remove', index: 1, howMany: 1 }, { type: 'insert', index: 1, values: [snap('s5', 1, 38)] }])
  assert.equal(diffs(tid).length, 3, 's5 entering the full list did not touch the top 2')
  // the docs in the results follow the ops
  assert.deepEqual(query.results.map((d) => d.data.score), [1, 30, 35, 38, 120])
  assertNoErrors(a, b)
})

test('live $count query: the count follows creates, changes and deletes as {a:"q", id, extra}', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection('count')
  const d1 = await created(a, c, 'k-1', { on: true })
  await created(a, c, 'k-2', { on: false })
  const query = await subscribeQuery(b, c, { on: true, $count: true })
  assert.equal(query.extra, 1)
  assert.deepEqual(query.results, [])
  const d3 = await created(a, c, 'k-3', { on: true })
  await waitFor(() => query.extra === 2, WAIT, () => `count 2 (is ${query.extra})`)
  await submitOp(d1, [{ p: ['on'], od: true, oi: false }])
  await waitFor(() => query.extra === 1, WAIT, () => `count 1 (is ${query.extra})`)
  await delDoc(d3)
  await waitFor(() => query.extra === 0, WAIT, () => `count 0 (is ${query.extra})`)
  const qid = b.sent.find((m) => m.a === 'qs').id
  const extras = b.received.filter((m) => m.a === 'q' && m.id === qid)
  assert.deepEqual(extras, [{ a: 'q', id: qid, extra: 2 }, { a: 'q', id: qid, extra: 1 }, { a: 'q', id: qid, extra: 0 }])
  assert.deepEqual(query.events.map((e) => e.extra), [2, 1, 0])
  assertNoErrors(a, b)
})

test('a live query survives a reconnect: the client resends qs with r:[[id, v]] and catches up', T, async () => {
  const [a, b] = await sdb.connect(2)
  const c = uniqCollection('resub')
  const d1 = await created(a, c, 'm-1', { on: true, n: 1 })
  const d2 = await created(a, c, 'm-2', { on: false, n: 2 })
  const d3 = await created(a, c, 'm-3', { on: true, n: 3 })
  const query = await subscribeQuery(b, c, { on: true })
  assert.deepEqual(sortedIds(query), ['m-1', 'm-3'])
  const r1 = query.results.find((d) => d.id === 'm-1')
  b.socket.close()
  await waitFor(() => b.state === 'disconnected', WAIT, 'b disconnected')
  await submitOp(d1, [{ p: ['n'], na: 10 }])
  await submitOp(d2, [{ p: ['on'], od: false, oi: true }])
  await submitOp(d3, [{ p: ['on'], od: true, oi: false }])
  const sentFrom = b.sent.length
  await b.reconnect()
  await waitFor(() => sortedIds(query).join() === 'm-1,m-2' && r1.version === 2, WAIT,
    () => `query caught up (${sortedIds(query)}, m-1 at v${r1.version})`)
  assert.deepEqual(plain(r1.data), { on: true, n: 11 })
  assert.deepEqual(plain(query.results.find((d) => d.id === 'm-2').data), { on: true, n: 2 })
  const qs = b.sent.slice(sentFrom).filter((m) => m.a === 'qs')
  assert.equal(qs.length, 1)
  assert.deepEqual(qs[0].q, { on: true })
  assert.deepEqual(qs[0].r.slice().sort(), [['m-1', 1], ['m-3', 1]])
  // the reply: ops for the result docs, one diff, then the bare {a:'qs', id}
  const qsReply = b.received.filter((m) => m.a === 'qs').pop()
  assert.deepEqual(qsReply, { a: 'qs', id: qs[0].id })
  // still live
  await submitOp(d3, [{ p: ['on'], od: false, oi: true }])
  await waitFor(() => sortedIds(query).join() === 'm-1,m-2,m-3', WAIT, () => `m-3 back (${sortedIds(query)})`)
  assertNoErrors(a, b)
})
