// Listening with deepstream's `listen.shuffleProviders: false`: a record's listeners are
// asked in the order they registered, not at random.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useServer, assertNoErrors, T } from '../lib/suite.mjs'
import { waitFor, sleep } from '../lib/client.mjs'

const ctx = useServer({ listen: { shuffleProviders: false } })

test('shuffleProviders false: listeners are asked in registration order, each after the previous rejects', T, async () => {
  const [sub, ...listeners] = await ctx.clients(5)
  const prefix = `ord${process.pid}x${Date.now().toString(36)}`
  const pat = `^${prefix}/.*`
  const asked = []
  for (const [i, listener] of listeners.entries()) {
    listener.record.listen(pat, (match, response) => {
      asked.push({ who: i, match })
      response.reject()
    })
    await sleep(100) // each LISTEN reaches the server before the next
  }
  // Two records: with four listeners asked at random, both in order would be luck
  // once in 576 runs.
  for (const item of ['a', 'b']) {
    const name = `${prefix}/${item}`
    const before = asked.length
    sub.record.getRecord(name)
    await waitFor(() => asked.length === before + listeners.length, 4000, `all listeners asked for ${name}`)
    assert.deepEqual(asked.slice(before), [0, 1, 2, 3].map((who) => ({ who, match: name })))
  }
  await sleep(200)
  assert.equal(asked.length, 2 * listeners.length, 'nobody is asked twice')
  assertNoErrors(sub, ...listeners)
})
