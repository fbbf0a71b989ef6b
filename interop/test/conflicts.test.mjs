// Conflicting writes converge: every pair of write kinds (whole value, path, erase), one
// write per client on top of the same version at the same moment, many rounds each.
//
// After each round both writers, the server (a third client's snapshot and head) and a
// fresh subscriber hold the same data at the same version, and that data is one of the two
// writes applied to the round's starting state (the loser's merge, REMOTE_WINS, adopts the
// winner's). The order in which the two writes are sent alternates between rounds so that
// each client wins some of them.
//
// Why each pair matters: a losing writer learns of the winning write twice, as the fan-out
// (whose version it already used itself) and as VERSION_EXISTS, and the client merges along
// a different path for each kind of fan-out. A fanned-out PATCH makes it READ the record;
// an UPDATE is merged as it is; an ERASE would be merged as a whole record that has no data
// (an erase carries none), so an erase must go out as deepstream sends it: a PATCH without
// data. The erase pairs failed against recordsync while it sent ERASE.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isDeepStrictEqual } from 'node:util'
import { useServer, plain, assertNoErrors, T } from '../lib/suite.mjs'
import { withTimeout, waitFor, uniq } from '../lib/client.mjs'

const ctx = useServer()

const ROUNDS = 20
/** Subscriptions are batched by the client every `subscriptionInterval` ms (default 100). */
const FAST_SUBSCRIBE = { subscriptionInterval: 10 }

/** The record every round starts from: both writes have something to change or erase. */
const start = (round) => ({ whole: `w${round}`, p: { r: `r${round}`, s: `s${round}` } })

/**
 * One write kind: `apply` is what it does to a value (for the expected outcomes), `send`
 * makes the write through the client's record API. `who` names the writer, so the two
 * writes of a round always differ.
 */
const writes = {
  whole: (who, round) => ({
    label: 'whole',
    apply: () => ({ v: `${who}${round}` }),
    send: (r) => r.set({ v: `${who}${round}` })
  }),
  path: (path) => (who, round) => ({
    label: `path ${path}`,
    apply: (value) => setPath(value, path, `${who}${round}`),
    send: (r) => r.set(path, `${who}${round}`)
  }),
  erase: (path) => () => ({
    label: `erase ${path}`,
    apply: (value) => erasePath(value, path),
    send: (r) => r.erase(path)
  })
}

const pairs = [
  ['whole/whole', writes.whole, writes.whole],
  ['path/path, the same path', writes.path('p.r'), writes.path('p.r')],
  ['path/path, different paths', writes.path('p.r'), writes.path('p.s')],
  ['whole/path', writes.whole, writes.path('p.r')],
  ['path/whole', writes.path('p.r'), writes.whole],
  ['erase/path (the same path)', writes.erase('whole'), writes.path('whole')],
  ['path/erase (the same path)', writes.path('whole'), writes.erase('whole')],
  ['erase/whole', writes.erase('whole'), writes.whole],
  ['erase/erase (different paths)', writes.erase('whole'), writes.erase('p.r')]
]

for (const [label, writeOfA, writeOfB] of pairs) {
  test(`conflicting writes converge, ${label}: ${ROUNDS} rounds, one write per client at the same moment`, T, async (t) => {
    const [a, b] = await ctx.clients(2, FAST_SUBSCRIBE)
    const name = uniq('conflict')
    const ra = a.record.getRecord(name)
    const rb = b.record.getRecord(name)
    await withTimeout(Promise.all([ra.whenReady(), rb.whenReady()]), 4000, 'both records ready')

    const wins = { A: 0, B: 0 }
    for (let round = 1; round <= ROUNDS; round++) {
      const at = `round ${round}`
      // Both clients hold the round's starting state at the same version.
      const initial = start(round)
      await withTimeout(ra.setWithAck(initial), 4000, `${at}: starting state acknowledged`)
      const base = ra.version
      await waitFor(() => rb.version === base && isDeepStrictEqual(plain(rb.get()), initial), 4000,
        () => `${at}: B at the starting state, version ${base} (B: ${state(rb)})`)

      // One write each, in the same tick, first A then B or first B then A.
      const wa = writeOfA('A', round)
      const wb = writeOfB('B', round)
      const outcomes = [wa.apply(initial), wb.apply(initial)]
      if (round % 2) { wa.send(ra); wb.send(rb) } else { wb.send(rb); wa.send(ra) }

      // Both writers agree, on one of the two writes, one version later.
      await waitFor(() => ra.version === base + 1 && rb.version === base + 1 &&
        isDeepStrictEqual(plain(ra.get()), plain(rb.get())), 4000,
      () => `${at}: A and B agree at version ${base + 1} (A: ${state(ra)}; B: ${state(rb)})`)
      const agreed = { data: plain(ra.get()), version: base + 1 }
      const winner = ['A', 'B'].find((_, i) => isDeepStrictEqual(outcomes[i], agreed.data))
      assert.ok(winner,
        `${at}: ${JSON.stringify(agreed.data)} is ${wa.label} by A or ${wb.label} by B applied to ${JSON.stringify(initial)}`)
      wins[winner]++

      // The server agrees (a third client that holds no records: snapshot and head)...
      assert.deepEqual(await ctx.serverState(name), agreed, `${at}: the server's snapshot and head`)
      // ...and so does a client that subscribes now.
      const fresh = await ctx.client(FAST_SUBSCRIBE)
      const rf = fresh.record.getRecord(name)
      await withTimeout(rf.whenReady(), 4000, `${at}: fresh subscriber ready`)
      assert.deepEqual({ data: plain(rf.get()), version: rf.version }, agreed, `${at}: a fresh subscriber`)
      assertNoErrors(fresh)
      fresh.close()

      // The writers still agree once the fresh subscriber has come and gone.
      assert.deepEqual({ data: plain(ra.get()), version: ra.version }, agreed, `${at}: A after the round`)
      assert.deepEqual({ data: plain(rb.get()), version: rb.version }, agreed, `${at}: B after the round`)
    }
    t.diagnostic(`rounds won: A ${wins.A}, B ${wins.B}`)
    // Each kind of write must have lost some rounds, or its loser's merge was not tested.
    assert.ok(wins.A > 0 && wins.B > 0, `each client won some rounds (A ${wins.A}, B ${wins.B})`)
    assertNoErrors(a, b)
  })
}

/** A record's version and data, for failure messages. */
const state = (r) => `version ${r.version}, ${JSON.stringify(plain(r.get())) ?? 'no data'}`

/** `value` with `path` (dot-separated keys) set to `data`; `value` is left as it is. */
function setPath (value, path, data) {
  const copy = structuredClone(value)
  const keys = path.split('.')
  let node = copy
  for (const key of keys.slice(0, -1)) node = node[key] ??= {}
  node[keys.at(-1)] = data
  return copy
}

/** `value` without `path` (dot-separated keys); `value` is left as it is. */
function erasePath (value, path) {
  const copy = structuredClone(value)
  const keys = path.split('.')
  let node = copy
  for (const key of keys.slice(0, -1)) node = node[key]
  delete node[keys.at(-1)]
  return copy
}
