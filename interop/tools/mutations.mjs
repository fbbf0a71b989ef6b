#!/usr/bin/env node
// Mutation check: proves the suite is strict, i.e. that it FAILS when the server gets a
// feature wrong. Each mutation puts a fault-injecting proxy (tools/trace.mjs with a transform)
// between the tests' clients and the real deepstream server, breaking one wire behaviour;
// the test files named for it must then fail.
//
//   node tools/mutations.mjs [mutation ...]     (default: all; needs interop/install.sh)
//
// The suite itself uses this module only when INTEROP_MUTATE names a mutation (lib/server.mjs).

import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { startTrace } from './trace.mjs'

const require = createRequire(import.meta.url)
const P = require('@deepstream/protobuf/dist/types/all')
const RA = P.RECORD_ACTION
const isRecord = (m) => m.topic === P.TOPIC.RECORD
const s2c = (action, fn) => (dir, m) => (dir === 's2c' && isRecord(m) && m.action === action) ? fn(m) : m
const c2s = (action, fn) => (dir, m) => (dir === 'c2s' && isRecord(m) && m.action === action) ? fn(m) : m
const drop = () => null

/** Rewrites arrays in a JSON value as objects keyed by index (a server without real arrays). */
function arraysToObjects (v) {
  if (Array.isArray(v)) return Object.fromEntries(v.map((x, i) => [String(i), arraysToObjects(x)]))
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, arraysToObjects(x)]))
  return v
}
function mapData (m, fn) {
  const out = { ...m }
  if (typeof m.data === 'string') out.data = JSON.stringify(fn(JSON.parse(m.data)))
  if (m.parsedData !== undefined) out.parsedData = fn(m.parsedData)
  return out
}

/** name -> { transform, files (test files expected to fail), what } */
export const MUTATIONS = {
  'no-version-0': {
    what: 'READ_RESPONSE of a new record omits version 0',
    files: ['records'],
    transform: s2c(RA.READ_RESPONSE, (m) => { if (m.version !== 0) return m; const { version, ...rest } = m; return rest })
  },
  'no-deleted': { what: 'other subscribers are not told of a delete', files: ['records', 'json-transport'], transform: s2c(RA.DELETED, drop) },
  'no-delete-success': { what: 'the deleter gets no DELETE_SUCCESS', files: ['records'], transform: s2c(RA.DELETE_SUCCESS, drop) },
  'head-missing-0': { what: 'HEAD of a missing record answers 0 instead of -1', files: ['records'], transform: s2c(RA.HEAD_RESPONSE, (m) => m.version === -1 ? { ...m, version: 0 } : m) },
  'not-found-as-empty': {
    what: 'READ of a missing record answers {} instead of RECORD_NOT_FOUND',
    files: ['records'],
    transform: s2c(RA.RECORD_NOT_FOUND, (m) => ({ topic: m.topic, action: RA.READ_RESPONSE, name: m.name, version: 0, data: '{}' }))
  },
  'no-write-ack': { what: 'write acknowledgements are never sent', files: ['records'], transform: s2c(RA.WRITE_ACKNOWLEDGEMENT, drop) },
  'no-patch-fanout': { what: 'path writes are not fanned out to other subscribers', files: ['records'], transform: s2c(RA.PATCH, drop) },
  'erase-ignored': { what: 'the server never sees ERASE', files: ['records'], transform: c2s(RA.ERASE, drop) },
  'no-real-arrays': {
    what: 'reads return arrays as index-keyed objects',
    files: ['records'],
    transform: s2c(RA.READ_RESPONSE, (m) => mapData(m, arraysToObjects))
  },
  'unsubscribe-ignored': { what: 'the server never sees UNSUBSCRIBE (discard)', files: ['records'], transform: c2s(RA.UNSUBSCRIBE, drop) },
  'erase-fanned-out-as-erase': {
    what: 'an erase reaches other subscribers as ERASE, not as a PATCH without data',
    files: ['conflicts'],
    transform: s2c(RA.PATCH, (m) => (m.data === undefined && m.parsedData === undefined) ? { ...m, action: RA.ERASE } : m)
  },
  'no-version-exists': { what: 'a losing concurrent write is not told VERSION_EXISTS', files: ['records'], transform: s2c(RA.VERSION_EXISTS, drop) },
  'no-has-provider': { what: 'subscribers never learn SUBSCRIPTION_HAS_PROVIDER', files: ['listen'], transform: s2c(RA.SUBSCRIPTION_HAS_PROVIDER, drop) },
  'no-has-no-provider': { what: 'subscribers never learn SUBSCRIPTION_HAS_NO_PROVIDER', files: ['listen'], transform: s2c(RA.SUBSCRIPTION_HAS_NO_PROVIDER, drop) },
  'no-pattern-removed': { what: 'providers never get SUBSCRIPTION_FOR_PATTERN_REMOVED (onStop)', files: ['listen'], transform: s2c(RA.SUBSCRIPTION_FOR_PATTERN_REMOVED, drop) },
  'reject-ignored': { what: 'the server never sees LISTEN_REJECT', files: ['listen'], transform: c2s(RA.LISTEN_REJECT, drop) },
  'no-update-fanout': { what: 'whole-value writes are not fanned out (lists)', files: ['lists'], transform: s2c(RA.UPDATE, drop) },
  'json-no-read-response': {
    what: 'the JSON transport never delivers READ_RESPONSE',
    files: ['json-transport'],
    transform: (dir, m, transport) => (transport === 'json' && dir === 's2c' && isRecord(m) && m.action === RA.READ_RESPONSE) ? null : m
  },
  'bad-input-ignored': {
    what: 'garbage input gets neither an error reply nor a close',
    files: ['bad-input'],
    transform: (dir, m) => (dir === 's2c' && (m.topic === P.TOPIC.PARSER || (m.topic === P.TOPIC.CONNECTION && m.action === P.CONNECTION_ACTION.INVALID_MESSAGE))) ? null : m
  }
}

/** Used by lib/server.mjs: a fault-injecting proxy in front of `upstream` (ws://host:port). */
export async function startMutatingProxy (name, upstream) {
  const mutation = MUTATIONS[name]
  if (!mutation) throw new Error(`unknown mutation ${name}; known: ${Object.keys(MUTATIONS).join(', ')}`)
  return startTrace({ upstream, transform: mutation.transform, unref: true })
}

function main () {
  const wanted = process.argv.slice(2)
  const names = wanted.length ? wanted : Object.keys(MUTATIONS)
  const survived = []
  for (const name of names) {
    const m = MUTATIONS[name]
    if (!m) throw new Error(`unknown mutation ${name}`)
    const files = m.files.map((f) => `test/${f}.test.mjs`)
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', ...files], {
      cwd: new URL('..', import.meta.url).pathname,
      env: { ...process.env, INTEROP_TARGET: 'deepstream', INTEROP_MUTATE: name },
      encoding: 'utf8'
    })
    const fail = Number((r.stdout.match(/^# fail (\d+)/m) || [])[1] || 0)
    const pass = Number((r.stdout.match(/^# pass (\d+)/m) || [])[1] || 0)
    const caught = r.status !== 0 && fail > 0
    console.log(`${caught ? 'caught  ' : 'SURVIVED'} ${name.padEnd(24)} ${String(fail).padStart(2)} failed / ${pass} passed   (${m.what})`)
    if (!caught) survived.push(name)
  }
  console.log(survived.length ? `mutations the suite did not catch: ${survived.join(', ')}` : `all ${names.length} mutations caught`)
  process.exit(survived.length ? 1 : 0)
}

if (import.meta.url === `file://${process.argv[1]}`) main()
