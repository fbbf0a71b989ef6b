#!/usr/bin/env node
// Records the real deepstream server's wire behaviour into interop/captures/*.jsonl.
//
//   node tools/capture.mjs [--target deepstream|recordsync] [--out DIR] [scenario ...]
//
// Defaults: target deepstream, out interop/captures, all scenarios. Capturing recordsync into
// another directory and diffing against the committed deepstream captures shows where the two
// differ on the wire (ignore `t` and the handshake `url`).
//
// Starts the real deepstream server (lib/server.mjs, target deepstream), puts tools/trace.mjs
// in front of it, and drives each scenario with the real @deepstream/client (and, where a
// client cannot produce the message, with raw protobuf frames built by @deepstream/protobuf).
// Each scenario gets its own proxy, so `conn` in a capture is the client's label (A, B, C, R
// for a raw socket). The handshake is kept only in handshake.jsonl; other captures show the
// RECORD topic (and PARSER/CONNECTION errors where relevant).

import { createRequire } from 'node:module'
import { writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import WebSocket from 'ws'
import { startServer, INTEROP_DIR } from '../lib/server.mjs'
import { startTrace } from './trace.mjs'
import { DeepstreamClient, BASE_OPTIONS, withTimeout, waitFor, recorder, sleep } from '../lib/client.mjs'
import { rawClient } from '../lib/raw.mjs'

const require = createRequire(import.meta.url)
const T = require('@deepstream/protobuf/dist/types/all')
const RA = T.RECORD_ACTION

let OUT_DIR = join(INTEROP_DIR, 'captures')
const settle = () => sleep(250)

const scenarios = {
  async handshake ({ client }) {
    const a = await client('A')
    a.close()
  },

  async 'subscribe-new-record' ({ client }) {
    const a = await client('A')
    const b = await client('B')
    const ra = a.record.getRecord('cap/new')
    await ra.whenReady()
    const rb = b.record.getRecord('cap/new')
    await rb.whenReady()
    // two records subscribed in one batch
    const r1 = a.record.getRecord('cap/batch-1')
    const r2 = a.record.getRecord('cap/batch-2')
    await Promise.all([r1.whenReady(), r2.whenReady()])
  },

  async 'set-without-ack' ({ client }) {
    const a = await client('A')
    const b = await client('B')
    const ra = a.record.getRecord('cap/set')
    const rb = b.record.getRecord('cap/set')
    await Promise.all([ra.whenReady(), rb.whenReady()])
    const seen = recorder('B update')
    rb.subscribe(seen)
    ra.set({ a: 1, list: [1, 2] })
    await seen.nth(1)
    ra.set('nested.deep.value', 'x')
    await seen.nth(2)
    ra.set('pets[1].fur.color', 'brown')
    await seen.nth(3)
  },

  async 'set-with-ack' ({ client }) {
    const a = await client('A')
    const b = await client('B')
    const ra = a.record.getRecord('cap/ack')
    const rb = b.record.getRecord('cap/ack')
    await Promise.all([ra.whenReady(), rb.whenReady()])
    await ra.setWithAck({ a: 1 })
    await ra.setWithAck('b', 2)
    await ra.eraseWithAck('b')
    await settle()
  },

  async 'setdata' ({ client }) {
    const a = await client('A')
    const b = await client('B')
    // nobody subscribes: CREATEANDUPDATE / CREATEANDPATCH with and without ack
    await a.record.setDataWithAck('cap/setdata-1', { x: 1 })
    await a.record.setDataWithAck('cap/setdata-1', 'y', 2)
    a.record.setData('cap/setdata-2', { z: 3 })
    a.record.setData('cap/setdata-2', 'w', 4)
    await settle()
    // a subscriber sees setData writes
    const rb = b.record.getRecord('cap/setdata-3')
    await rb.whenReady()
    const seen = recorder('B update')
    rb.subscribe(seen)
    a.record.setData('cap/setdata-3', { from: 'A' })
    await seen.nth(1)
    await a.record.setDataWithAck('cap/setdata-3', 'more', true)
    await seen.nth(2)
  },

  async 'patch-erase' ({ client }) {
    const a = await client('A')
    const b = await client('B')
    const ra = a.record.getRecord('cap/patch')
    const rb = b.record.getRecord('cap/patch')
    await Promise.all([ra.whenReady(), rb.whenReady()])
    const seen = recorder('B update')
    rb.subscribe(seen)
    ra.set('a.b', 1)
    await seen.nth(1)
    ra.set('a.c', { d: [1, 2] })
    await seen.nth(2)
    ra.erase('a.b')
    await seen.nth(3)
    ra.set('a.c', undefined) // set to undefined is an erase
    await seen.nth(4)
  },

  async 'delete' ({ client }) {
    const a = await client('A')
    const b = await client('B')
    const ra = a.record.getRecord('cap/delete')
    const rb = b.record.getRecord('cap/delete')
    await Promise.all([ra.whenReady(), rb.whenReady()])
    await ra.setWithAck({ doomed: true })
    const deleted = new Promise((resolve) => rb.on('delete', resolve))
    await ra.delete()
    await withTimeout(deleted, 3000, 'B delete event')
    // delete of a record only the deleter subscribes to
    const r2 = a.record.getRecord('cap/delete-2')
    await r2.whenReady()
    await r2.delete()
    await settle()
  },

  async 'missing-head-has-snapshot' ({ client }) {
    const a = await client('A')
    await a.record.head('cap/missing')
    await a.record.has('cap/missing')
    await a.record.snapshot('cap/missing').catch(() => {})
    await a.record.setDataWithAck('cap/present', { here: 1 })
    await a.record.head('cap/present')
    await a.record.has('cap/present')
    await a.record.snapshot('cap/present')
  },

  async 'version-exists' ({ client }) {
    const a = await client('A')
    const b = await client('B')
    const ra = a.record.getRecord('cap/conflict')
    const rb = b.record.getRecord('cap/conflict')
    await Promise.all([ra.whenReady(), rb.whenReady()])
    await ra.setWithAck({ v: 'start' })
    await waitFor(() => rb.version === 1, 3000, 'B at v1')
    ra.set('v', 'from A')
    rb.set('v', 'from B')
    await waitFor(() => ra.version === rb.version && JSON.stringify(ra.get()) === JSON.stringify(rb.get()) && ra.version >= 2, 3000, 'converged')
    await settle()
  },

  // An erase and a set of the same path at the same moment, once won by each side: how the
  // winning erase reaches the loser, and what VERSION_EXISTS says about a losing erase. Then
  // raw frames: a PATCH without data, and an ERASE with a version gap.
  async 'version-exists-erase' ({ client, raw }) {
    const a = await client('A')
    const b = await client('B')
    const ra = a.record.getRecord('cap/conflict-erase')
    const rb = b.record.getRecord('cap/conflict-erase')
    await Promise.all([ra.whenReady(), rb.whenReady()])
    const agree = (v) => waitFor(() => ra.version === v && rb.version === v &&
      JSON.stringify(ra.get()) === JSON.stringify(rb.get()), 3000, `agree at v${v}`)
    await ra.setWithAck({ x: 'start', keep: 1 })
    await agree(1)
    ra.erase('x') // sent first: wins
    rb.set('x', 'from B')
    await agree(2)
    await settle()
    await ra.setWithAck({ x: 'again', keep: 1 })
    await agree(3)
    rb.set('x', 'from B') // sent first: wins
    ra.erase('x')
    await agree(4)
    await settle()
    const r = await raw('R')
    const name = 'cap/conflict-erase'
    r.send({ topic: T.TOPIC.RECORD, action: RA.PATCH, name, version: 5, path: 'keep' }) // no data
    await waitFor(() => ra.version === 5 && rb.version === 5, 3000, 'the PATCH without data at v5')
    r.send({ topic: T.TOPIC.RECORD, action: RA.ERASE, name, version: 9, path: 'x' }) // gap
    await r.expect((m) => m.action === RA.INVALID_VERSION, 'INVALID_VERSION')
    await settle()
  },

  async 'raw-version-errors' ({ raw }) {
    const r = await raw('R')
    const name = 'cap/raw-versions'
    r.send({ topic: T.TOPIC.RECORD, action: RA.SUBSCRIBECREATEANDREAD, names: [name], correlationId: '1' })
    await r.expect((m) => m.action === RA.READ_RESPONSE, 'READ_RESPONSE')
    r.send({ topic: T.TOPIC.RECORD, action: RA.UPDATE, name, version: 1, data: '{"n":1}' })
    r.send({ topic: T.TOPIC.RECORD, action: RA.UPDATE, name, version: 1, data: '{"n":"dup"}' }) // used version
    await r.expect((m) => m.action === RA.VERSION_EXISTS, 'VERSION_EXISTS')
    r.send({ topic: T.TOPIC.RECORD, action: RA.UPDATE, name, version: 5, data: '{"n":5}' }) // gap
    await sleep(300)
    r.send({ topic: T.TOPIC.RECORD, action: RA.UPDATE, name, version: 2, data: '{"n":2}', isWriteAck: true, correlationId: '7' })
    r.send({ topic: T.TOPIC.RECORD, action: RA.PATCH, name, version: 2, path: 'p', data: '1', isWriteAck: true, correlationId: '8' }) // used version, with ack
    r.send({ topic: T.TOPIC.RECORD, action: RA.UPDATE, name, version: -1, data: '{"n":"minus one"}' })
    await sleep(300)
    r.send({ topic: T.TOPIC.RECORD, action: RA.READ, name })
    r.send({ topic: T.TOPIC.RECORD, action: RA.HEAD, name })
    await sleep(300)
    // writes to a record this socket did not subscribe to
    r.send({ topic: T.TOPIC.RECORD, action: RA.UPDATE, name: 'cap/raw-unsubscribed', version: 1, data: '{"n":1}' })
    r.send({ topic: T.TOPIC.RECORD, action: RA.UNSUBSCRIBE, names: ['cap/never-subscribed'], correlationId: '9' })
    await sleep(300)
    r.close()
  },

  async 'raw-writes-without-subscribe' ({ client, raw }) {
    const a = await client('A')
    await a.record.setDataWithAck('cap/exists', { v: 1 })
    const r = await raw('R')
    // writes by a connection that never subscribed to the record
    r.send({ topic: T.TOPIC.RECORD, action: RA.UPDATE, name: 'cap/exists', version: 2, data: '{"v":2}', isWriteAck: true, correlationId: 'w1' })
    await sleep(200)
    r.send({ topic: T.TOPIC.RECORD, action: RA.PATCH, name: 'cap/exists', version: 3, path: 'p', data: '"x"' })
    r.send({ topic: T.TOPIC.RECORD, action: RA.CREATEANDUPDATE, name: 'cap/created-raw', version: -1, data: '{"c":1}', isWriteAck: true, correlationId: 'w2' })
    r.send({ topic: T.TOPIC.RECORD, action: RA.CREATEANDPATCH, name: 'cap/created-raw', version: -1, path: 'd', data: '2', isWriteAck: true, correlationId: 'w3' })
    await sleep(300)
    r.send({ topic: T.TOPIC.RECORD, action: RA.READ, name: 'cap/exists' })
    r.send({ topic: T.TOPIC.RECORD, action: RA.HEAD, name: 'cap/created-raw' })
    r.send({ topic: T.TOPIC.RECORD, action: RA.DELETE, name: 'cap/created-raw' })
    r.send({ topic: T.TOPIC.RECORD, action: RA.HEAD, name: 'cap/created-raw' })
    await sleep(300)
  },

  async 'listen-accept' ({ client }) {
    const provider = await client('A')
    const sub = await client('B')
    const late = await client('C')
    const seen = recorder('listen')
    provider.record.listen('cap-listen/.*', (match, response) => { seen(match); response.accept() })
    await sleep(100)
    const rb = sub.record.getRecord('cap-listen/x')
    await rb.whenReady()
    await waitFor(() => rb.hasProvider, 3000, 'hasProvider')
    const rc = late.record.getRecord('cap-listen/x')
    await rc.whenReady()
    await waitFor(() => rc.hasProvider, 3000, 'late subscriber hasProvider')
    provider.record.unlisten('cap-listen/.*')
    await waitFor(() => !rb.hasProvider, 3000, 'hasProvider false after unlisten')
    await settle()
  },

  async 'listen-reject' ({ client }) {
    const sub = await client('A')
    const p1 = await client('B')
    const p2 = await client('C')
    let rejected = 0
    const cb = (match, response) => { if (rejected++ === 0) response.reject(); else response.accept() }
    p1.record.listen('cap-reject/.*', cb)
    p2.record.listen('cap-reject/.*', cb)
    await sleep(100)
    const r = sub.record.getRecord('cap-reject/1')
    await r.whenReady()
    await waitFor(() => r.hasProvider, 3000, 'hasProvider')
    await settle()
  },

  async 'listen-onstop' ({ client }) {
    const provider = await client('A')
    const s1 = await client('B')
    const s2 = await client('C')
    const stopped = recorder('onStop')
    provider.record.listen('cap-stop/.*', (match, response) => { response.accept(); response.onStop(stopped) })
    await sleep(100)
    const r1 = s1.record.getRecord('cap-stop/1')
    const r2 = s2.record.getRecord('cap-stop/1')
    await Promise.all([r1.whenReady(), r2.whenReady()])
    await waitFor(() => r1.hasProvider && r2.hasProvider, 3000, 'hasProvider')
    r1.discard()
    await sleep(300)
    r2.discard()
    await stopped.nth(1)
    await settle()
  },

  async 'listen-provider-disconnect' ({ client }) {
    const sub = await client('A')
    const provider = await client('B')
    provider.record.listen('cap-disc/.*', (match, response) => response.accept())
    await sleep(100)
    const r = sub.record.getRecord('cap-disc/1')
    await r.whenReady()
    await waitFor(() => r.hasProvider, 3000, 'hasProvider')
    provider.close()
    await waitFor(() => !r.hasProvider, 3000, 'hasProvider false after provider left')
    await settle()
  },

  async 'listen-existing-subscriptions' ({ client }) {
    const sub = await client('A')
    const provider = await client('B')
    const r1 = sub.record.getRecord('cap-exist/1')
    const r2 = sub.record.getRecord('cap-exist/2')
    await Promise.all([r1.whenReady(), r2.whenReady()])
    provider.record.listen('cap-exist/.*', (match, response) => response.accept())
    await waitFor(() => r1.hasProvider && r2.hasProvider, 3000, 'hasProvider both')
    await settle()
  },

  async 'discard' ({ client }) {
    const a = await client('A')
    const b = await client('B')
    const ra = a.record.getRecord('cap/discard')
    const rb = b.record.getRecord('cap/discard')
    await Promise.all([ra.whenReady(), rb.whenReady()])
    ra.discard()
    await sleep(300)
    rb.set({ after: 'discard' })
    await settle()
  },

  async 'lists' ({ client }) {
    const a = await client('A')
    const b = await client('B')
    const la = a.record.getList('cap/list')
    const lb = b.record.getList('cap/list')
    await Promise.all([la.whenReady(), lb.whenReady()])
    const seen = recorder('B list')
    lb.subscribe(seen)
    la.setEntries(['a', 'b'])
    await seen.nth(1)
    la.addEntry('c')
    await seen.nth(2)
    la.addEntry('x', 1)
    await seen.nth(3)
    la.removeEntry('a')
    await seen.nth(4)
  },

  async 'json-transport' ({ client }) {
    const j = await client('A', { json: true })
    const b = await client('B')
    const rj = j.record.getRecord('cap/json')
    const rb = b.record.getRecord('cap/json')
    await Promise.all([rj.whenReady(), rb.whenReady()])
    const seen = recorder('json update')
    rj.subscribe(seen)
    rb.set({ from: 'binary' })
    await seen.nth(1)
    rb.set('path.x', 1)
    await seen.nth(2)
    await rj.setWithAck('fromJson', true)
    await j.record.head('cap/json-missing')
    await j.record.snapshot('cap/json-missing').catch(() => {})
    await j.record.snapshot('cap/json')
    j.record.listen('cap-json-listen/.*', (m, r) => r.accept())
    await sleep(100)
    const rl = b.record.getRecord('cap-json-listen/1')
    await rl.whenReady()
    await waitFor(() => rl.hasProvider, 3000, 'hasProvider')
    const deleted = new Promise((resolve) => rj.on('delete', resolve))
    await rb.delete()
    await withTimeout(deleted, 3000, 'json delete event')
    await settle()
  },

  async 'bad-input-after-login' ({ raw }) {
    const r = await raw('R')
    r.sendRaw(Buffer.from([0xde, 0xad, 0xbe, 0xef])) // undecodable
    await sleep(200)
    r.sendRaw(Buffer.from([0x04, 0x10, 42, 0x1a, 0x00])) // envelope with unknown topic 42
    await sleep(200)
    r.send({ topic: T.TOPIC.RECORD, action: RA.SUBSCRIBECREATEANDREAD, names: ['cap/bad'], correlationId: '1' })
    await sleep(200)
    r.send({ topic: T.TOPIC.RECORD, action: RA.UPDATE, name: 'cap/bad', version: 1, data: '42' }) // not an object
    await sleep(200)
    r.send({ topic: T.TOPIC.RECORD, action: RA.UNSUBSCRIBE, names: ['cap/bad'], correlationId: '2' })
    r.send({ topic: T.TOPIC.RECORD, action: RA.UNSUBSCRIBE, names: ['cap/bad'], correlationId: '3' }) // not subscribed any more
    await sleep(200)
    r.sendRaw('text frame after login')
    await sleep(300)
  },

  // The real deepstream 7.0.2 process exits on this (uncaught JSON.parse error in the write
  // path): run on a server of its own, last.
  async 'crash-invalid-json-data' ({ raw }) {
    const r = await raw('R')
    r.send({ topic: T.TOPIC.RECORD, action: RA.UPDATE, name: 'cap/crash', version: 1, data: '{not json' })
    await sleep(500)
  },

  async 'bad-input' ({ proxyUrl }) {
    // garbage bytes on the binary endpoint
    const g = new WebSocket(proxyUrl('/deepstream'))
    await new Promise((resolve) => g.once('open', resolve))
    g.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x13, 0x37]))
    await new Promise((resolve) => { g.once('close', resolve); setTimeout(resolve, 1500) })
    g.terminate()
    // a text frame on the binary endpoint
    const t = new WebSocket(proxyUrl('/deepstream'))
    await new Promise((resolve) => t.once('open', resolve))
    t.send('this is not protobuf')
    await new Promise((resolve) => { t.once('close', resolve); setTimeout(resolve, 1500) })
    t.terminate()
    // garbage on the JSON endpoint
    const j = new WebSocket(proxyUrl('/deepstream-json'))
    await new Promise((resolve) => j.once('open', resolve))
    j.send('{not json')
    await new Promise((resolve) => { j.once('close', resolve); setTimeout(resolve, 1500) })
    j.terminate()
  }
}

async function runScenario (server, name, fn) {
  const lines = []
  const labels = new Map()
  const keepAll = name === 'handshake' || name.startsWith('bad-input') || name.startsWith('crash')
  const trace = await startTrace({
    upstream: `ws://127.0.0.1:${server.port}`,
    label: (conn) => labels.get(conn) || `#${conn}`,
    onLine: (line) => {
      if (!keepAll && line.event === undefined && (line.topic === 'CONNECTION' || line.topic === 'AUTH')) return
      lines.push(line)
    }
  })
  let nextConn = 1
  const opened = []
  const client = async (label, { json = false } = {}) => {
    labels.set(nextConn++, label)
    const c = new DeepstreamClient(trace.url(json ? '/deepstream-json' : '/deepstream'),
      { ...BASE_OPTIONS, ...(json ? { socketOptions: { jsonTransportMode: true } } : {}) })
    c.on('error', () => {})
    await withTimeout(c.login(), 3000, `${label} login`)
    opened.push(c)
    return c
  }
  const raw = async (label) => {
    labels.set(nextConn++, label)
    const r = await rawClient(trace.url('/deepstream'))
    opened.push(r)
    return r
  }
  try {
    await withTimeout(fn({ client, raw, proxyUrl: trace.url }), 15000, `scenario ${name}`)
  } finally {
    await sleep(150)
    for (const c of opened) { try { c.close() } catch {} }
    await sleep(150)
    await trace.close()
  }
  const file = join(OUT_DIR, `${name}.jsonl`)
  writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
  console.log(`${name}: ${lines.length} lines -> ${file}`)
}

async function main () {
  const args = process.argv.slice(2)
  const opt = (flag) => {
    const i = args.indexOf(flag)
    if (i < 0) return undefined
    const v = args[i + 1]
    args.splice(i, 2)
    return v
  }
  const target = opt('--target') || 'deepstream'
  OUT_DIR = opt('--out') || OUT_DIR
  const wanted = args
  const names = wanted.length ? wanted : Object.keys(scenarios)
  for (const n of names) if (!scenarios[n]) throw new Error(`unknown scenario ${n}; known: ${Object.keys(scenarios).join(', ')}`)
  mkdirSync(OUT_DIR, { recursive: true })
  const ownServer = (n) => n.startsWith('crash')
  const server = await startServer({ target })
  try {
    for (const n of names.filter((x) => !ownServer(x))) await runScenario(server, n, scenarios[n])
  } finally {
    await server.stop()
  }
  for (const n of names.filter(ownServer)) {
    const own = await startServer({ target })
    try {
      await runScenario(own, n, scenarios[n])
      const exit = await Promise.race([own.exited, sleep(1000).then(() => null)])
      console.log(`${n}: server ${exit ? `exited ${JSON.stringify(exit)}` : 'still running'}`)
    } finally {
      await own.stop()
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1) })
