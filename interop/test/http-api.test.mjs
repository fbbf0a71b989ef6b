// deepstream's HTTP API (`POST /api` with `{token?, authData?, body: [...]}`, `POST /api/auth`),
// with plain fetch(), against the real deepstream 7 first, then recordsync. What each test
// asserts is what deepstream 7.0.2 answers, byte for byte where the answer is deepstream's own
// (result, error texts, numeric errorEvent, key order, HTTP status and text bodies), taken from
// its sources (src/connection-endpoint/http, src/jif, src/services/http/node) and from running
// it. The scenarios of deepstream's end-to-end suite (deepstream.io-e2e, http/records.feature
// and http/lists.feature) that involve records are here, with the same names.
//
// Where recordsync deliberately differs, the test says so in its name and runs on one target:
// - deepstream serves RPCs and presence; recordsync does not serve those topics yet and
//   answers each such message with an unsupported-topic failure (deepstream itself has no HTTP
//   answer for an unserved topic: with a topic disabled, 7.0.2 crashes on such a request);
// - deepstream 7's HTTP API gives an event emit's publish rule no `data` (so a rule reading it
//   refuses); recordsync gives it the payload, as deepstream's WebSocket endpoints do;
// - deepstream's stock auth types (none, file) issue no token at /api/auth; recordsync issues
//   one, usable as `token` on later requests.
// deepstream runs a batch's messages side by side (a read in the same batch as a write may run
// first); recordsync runs them in order. No test here depends on the order within a batch
// except where both agree (a versioned write after an unversioned one, as the e2e suite does).

import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import http from 'node:http'
import { startServer, INTEROP_DIR, TARGET } from '../lib/server.mjs'
import { connect, withTimeout, uniq, waitFor } from '../lib/client.mjs'

const T = { timeout: 15000 }
const FIXTURES = join(INTEROP_DIR, 'fixtures', 'permissions')
const JSON_TYPE = { 'content-type': 'application/json' }

/** POSTs `body` (an object, sent as JSON, or a string sent as it is); returns status, headers, text and parsed JSON. */
async function post (server, path, body, headers = JSON_TYPE) {
  const res = await fetch(server.httpUrl + path, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body)
  })
  const text = await res.text()
  let json
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.status, headers: res.headers, text, json }
}

/** POST /api with these messages (and `extra` fields: token, authData); expects 200 and returns the JSON. */
async function api (server, messages, extra = {}) {
  const r = await post(server, '/api', { ...extra, body: messages })
  assert.equal(r.status, 200, r.text)
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8')
  assert.ok(r.text.endsWith('\r\n\r\n'), 'deepstream ends its bodies with a blank line')
  return r.json
}

const W = (recordName, data, more = {}) => ({ topic: 'record', action: 'write', recordName, data, ...more })
const R = (recordName) => ({ topic: 'record', action: 'read', recordName })
const H = (recordName) => ({ topic: 'record', action: 'head', recordName })
const D = (recordName) => ({ topic: 'record', action: 'delete', recordName })
const OK = { success: true }
const notFound = (name) => ({ errorTopic: 'record', errorEvent: 107, success: false, error: `Record read failed. Record "${name}" could not be found.` })
const versionExists = (name, version, data) => ({ errorTopic: 'record', errorEvent: 102, success: false, error: `Record update failed. Version ${version} exists for record "${name}".`, currentVersion: version, currentData: data })
const invalidVersion = (name, version, sent) => ({ errorTopic: 'record', errorEvent: 108, success: false, error: `Record update failed. Version ${version} is not valid for record "${name}".`, currentVersion: version, currentData: sent })
const denied = (action, actionName) => ({ errorTopic: 'record', errorEvent: 115, success: false, action, error: `Message denied. Action "${actionName}" is not permitted.` })

/** A text answer of deepstream's HTTP service: status, text/plain, the message and a blank line. */
function assertText (r, status, message) {
  assert.equal(r.status, status, r.text)
  assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8')
  assert.equal(r.text, `${message}\r\n\r\n`)
}

describe('HTTP API, open server (auth none)', () => {
  let server
  before(async () => { server = await startServer() })
  after(async () => { if (server) await server.stop() })

  test('write, then read and head: SUCCESS with version and data', T, async () => {
    const name = uniq('http')
    assert.deepEqual(await api(server, [W(name, { name: 'alex', n: [1, 2.5] })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [R(name)]), { result: 'SUCCESS', body: [{ version: 1, data: { name: 'alex', n: [1, 2.5] }, success: true }] })
    assert.deepEqual(await api(server, [H(name)]), { result: 'SUCCESS', body: [{ version: 1, success: true }] })
  })

  test('a missing record: read is RECORD_NOT_FOUND (107), head is version -1', T, async () => {
    const name = uniq('http-missing')
    assert.deepEqual(await api(server, [R(name)]), { result: 'FAILURE', body: [notFound(name)] })
    assert.deepEqual(await api(server, [H(name)]), { result: 'SUCCESS', body: [{ version: -1, success: true }] })
  })

  test('writes by path create the record and nested objects; array data', T, async () => {
    const name = uniq('http-path')
    assert.deepEqual(await api(server, [W(name, 5, { path: 'b.c' })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [W(name, [1, 2, 3], { path: 'list' })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [W(name, 'x', { path: 'list[1]' })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [W(name, null, { path: 'gone' })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [R(name)]), { result: 'SUCCESS', body: [{ version: 4, data: { b: { c: 5 }, list: [1, 'x', 3], gone: null }, success: true }] })
    const arr = uniq('http-array')
    assert.deepEqual(await api(server, [W(arr, ['x', 'y', 'z'])]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [R(arr)]), { result: 'SUCCESS', body: [{ version: 1, data: ['x', 'y', 'z'], success: true }] })
  })

  test('e2e: Updating a record with specific versions', T, async () => {
    const name = uniq('clean')
    assert.deepEqual(await api(server, [W(name, { x: 1 }, { version: 1 })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [H(name)]), { result: 'SUCCESS', body: [{ version: 1, success: true }] })
    assert.deepEqual(await api(server, [W(name, { x: 2 }, { version: 2 })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [W(name, { x: 3 }, { version: -1 })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [H(name)]), { result: 'SUCCESS', body: [{ version: 3, success: true }] })
    assert.deepEqual(await api(server, [W(name, { x: 3833 }, { version: 3 })]), { result: 'FAILURE', body: [versionExists(name, 3, { x: 3 })] })
    assert.deepEqual(await api(server, [R(name)]), { result: 'SUCCESS', body: [{ version: 3, data: { x: 3 }, success: true }] })
    // a path write naming a used version is refused the same way
    assert.deepEqual(await api(server, [W(name, 1, { path: 'y', version: 2 })]), { result: 'FAILURE', body: [versionExists(name, 3, { x: 3 })] })
  })

  test('version 0 means "the next", as -1 does', T, async () => {
    const name = uniq('http-v0')
    assert.deepEqual(await api(server, [W(name, { a: 1 }, { version: 0 })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [W(name, { a: 2 }, { version: 0 })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [R(name)]), { result: 'SUCCESS', body: [{ version: 2, data: { a: 2 }, success: true }] })
  })

  test('INVALID_VERSION (108): the current version, and the data that was sent as currentData', T, async () => {
    const name = uniq('http-invalid')
    assert.deepEqual(await api(server, [W(name, { a: 1 })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [W(name, { a: 9 }, { version: 9 })]), { result: 'FAILURE', body: [invalidVersion(name, 1, { a: 9 })] })
    assert.deepEqual(await api(server, [R(name)]), { result: 'SUCCESS', body: [{ version: 1, data: { a: 1 }, success: true }] })
    // (deepstream refuses the writes to a record after it answered INVALID_VERSION for it, so
    // each case uses a record of its own)
    const byPath = uniq('http-invalid-path')
    assert.deepEqual(await api(server, [W(byPath, { a: 1 })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [W(byPath, 'v', { path: 'p', version: 7 })]), { result: 'FAILURE', body: [invalidVersion(byPath, 1, 'v')] })
    // a missing record is at version 0: only 1 (or the next: -1, 0) creates it
    const fresh = uniq('http-invalid-new')
    assert.deepEqual(await api(server, [W(fresh, { x: 1 }, { version: 5 })]), { result: 'FAILURE', body: [invalidVersion(fresh, 0, { x: 1 })] })
    assert.deepEqual(await api(server, [R(fresh)]), { result: 'FAILURE', body: [notFound(fresh)] })
  })

  test('e2e: Multiple updates (PARTIAL_SUCCESS, VERSION_EXISTS at index 1)', T, async () => {
    const name = uniq('rec')
    const client = await connect(server)
    try {
      const record = client.record.getRecord(name)
      await withTimeout(record.whenReady(), 3000, 'record ready')
      const r = await api(server, [W(name, { a: 'b' }), W(name, { a: 'b' }, { version: 1 })])
      assert.equal(r.result, 'PARTIAL_SUCCESS')
      assert.deepEqual(r.body[0], OK)
      assert.equal(r.body[1].success, false)
      assert.equal(r.body[1].errorTopic, 'record')
      assert.equal(r.body[1].errorEvent, 102)
      assert.match(r.body[1].error, /Record update failed/)
      await waitFor(() => JSON.stringify(record.get()) === JSON.stringify({ a: 'b' }), 3000, 'client A has the data')
    } finally { client.close() }
  })

  test('e2e: Invalid version (PARTIAL_SUCCESS, "is not valid for record" at index 1)', T, async () => {
    const name = uniq('rec')
    const r = await api(server, [W(name, { a: 'b' }), W(name, { a: 'b' }, { version: 100 })])
    assert.equal(r.result, 'PARTIAL_SUCCESS')
    assert.deepEqual(r.body[0], OK)
    assert.equal(r.body[1].errorTopic, 'record')
    assert.match(r.body[1].error, /is not valid for record/i)
  })

  test('a batch where everything fails is FAILURE; every message is answered at its index', T, async () => {
    const a = uniq('http-fail-a')
    const b = uniq('http-fail-b')
    assert.deepEqual(await api(server, [R(a), R(b)]), { result: 'FAILURE', body: [notFound(a), notFound(b)] })
  })

  test('delete: SUCCESS, then the record is gone; deleting a missing record is SUCCESS too', T, async () => {
    const name = uniq('http-delete')
    await api(server, [W(name, { a: 1 })])
    assert.deepEqual(await api(server, [D(name)]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [R(name)]), { result: 'FAILURE', body: [notFound(name)] })
    assert.deepEqual(await api(server, [H(name)]), { result: 'SUCCESS', body: [{ version: -1, success: true }] })
    assert.deepEqual(await api(server, [D(name)]), { result: 'SUCCESS', body: [OK] })
    // created again, it starts over at version 1
    assert.deepEqual(await api(server, [W(name, { b: 2 })]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [R(name)]), { result: 'SUCCESS', body: [{ version: 1, data: { b: 2 }, success: true }] })
  })

  test('e2e: Getting a record (written by a WebSocket client)', T, async () => {
    const name = uniq('some-record')
    const client = await connect(server)
    try {
      await withTimeout(client.record.setDataWithAck(name, { name: 'alex' }), 3000, 'setData')
      assert.deepEqual(await api(server, [R(name)]), { result: 'SUCCESS', body: [{ version: 1, data: { name: 'alex' }, success: true }] })
    } finally { client.close() }
  })

  test('e2e: Updating a record, and Updating a record with a path (a subscriber sees HTTP writes)', T, async () => {
    const name = uniq('nested-record')
    const client = await connect(server)
    try {
      const record = client.record.getRecord(name)
      await withTimeout(record.whenReady(), 3000, 'record ready')
      await withTimeout(record.setWithAck({ user: { firstName: 'Morty', lastName: 'Smith' } }), 3000, 'set')
      assert.deepEqual(await api(server, [W(name, 'Rick', { path: 'user.firstName' }), W(name, 'Sanchez', { path: 'user.lastName' })]), { result: 'SUCCESS', body: [OK, OK] })
      await waitFor(() => JSON.stringify(record.get()) === JSON.stringify({ user: { firstName: 'Rick', lastName: 'Sanchez' } }), 3000, 'path writes reach the subscriber')
      assert.deepEqual(await api(server, [W(name, { fresh: true })]), { result: 'SUCCESS', body: [OK] })
      await waitFor(() => JSON.stringify(record.get()) === JSON.stringify({ fresh: true }), 3000, 'the update reaches the subscriber')
      assert.equal(record.version, 4)
    } finally { client.close() }
  })

  test('e2e: Deleting a record (the subscriber is told)', T, async () => {
    const name = uniq('delete-record')
    const client = await connect(server)
    try {
      const record = client.record.getRecord(name)
      await withTimeout(record.whenReady(), 3000, 'record ready')
      const deleted = new Promise((resolve) => record.on('delete', resolve))
      assert.deepEqual(await api(server, [D(name)]), { result: 'SUCCESS', body: [OK] })
      await withTimeout(deleted, 3000, 'delete event')
    } finally { client.close() }
  })

  test('e2e lists: write, read, delete a list', T, async () => {
    const name = uniq('some-list')
    assert.deepEqual(await api(server, [{ topic: 'list', action: 'write', listName: name, data: ['alex', 'jeff'] }]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [{ topic: 'list', action: 'read', listName: name }]), { result: 'SUCCESS', body: [{ version: 1, data: ['alex', 'jeff'], success: true }] })
    const client = await connect(server)
    try {
      const list = client.record.getList(name)
      await withTimeout(list.whenReady(), 3000, 'list ready')
      assert.deepEqual(list.getEntries(), ['alex', 'jeff'])
    } finally { client.close() }
    assert.deepEqual(await api(server, [{ topic: 'list', action: 'delete', listName: name }]), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [R(name)]), { result: 'FAILURE', body: [notFound(name)] })
    // e2e: Updating a list with non string entries fails
    const r = await post(server, '/api', { body: [{ topic: 'list', action: 'write', listName: name, data: [{ willFail: true }] }] })
    assertText(r, 400, 'Failed to parse JIF object at index 0.')
  })

  test('malformed requests: 400 with deepstream\'s texts', T, async () => {
    assertText(await post(server, '/api', {}), 400, 'Invalid message: the "body" parameter must exist.')
    assertText(await post(server, '/api', { body: null }), 400, 'Invalid message: the "body" parameter must exist.')
    assertText(await post(server, '/api', '[1]'), 400, 'Invalid message: the "body" parameter must exist.')
    assertText(await post(server, '/api', { body: [] }), 400, 'Invalid message: the "body" parameter must be a non-empty array of Objects.')
    assertText(await post(server, '/api', { body: 5 }), 400, 'Invalid message: the "body" parameter must be a non-empty array of Objects.')
    assertText(await post(server, '/api', { body: { topic: 'record' } }), 400, 'Invalid message: the "body" parameter must be a non-empty array of Objects.')
    assertText(await post(server, '/api', { token: 5, body: [R('x')] }), 400, 'Invalid message: the "token" parameter must be a non-empty string')
    assertText(await post(server, '/api', { token: '', body: [R('x')] }), 400, 'Invalid message: the "token" parameter must be a non-empty string')
    assertText(await post(server, '/api', { authData: 5, body: [R('x')] }), 400, 'Invalid message: the "authData" parameter must be an object')
    assertText(await post(server, '/api', { authData: null, body: [R('x')] }), 400, 'Invalid message: the "authData" parameter must be an object')
    // an empty body is read as {} (body-parser's behaviour)
    assertText(await post(server, '/api', ''), 400, 'Invalid message: the "body" parameter must exist.')
    for (const bad of ['{bad json', '5', 'null', '"text"', '{"body": [}']) {
      const r = await post(server, '/api', bad)
      assert.equal(r.status, 400, bad)
      assert.match(r.text, /^Failed to parse body of request: .+\r\n\r\n$/, bad)
    }
  })

  test('messages that are not deepstream JIF: 400 naming the index, with ajv\'s reason where deepstream gives one', T, async () => {
    const cases = [
      ['str', " Reason: property '' should be object"],
      [null, " Reason: property '' should be object"],
      [[], " Reason: property '' should be object"],
      [{}, " Reason: property 'topic' is required for topic 'undefined'"],
      [{ action: 'emit', eventName: 'x' }, " Reason: property 'topic' is required for topic 'undefined'"],
      [{ action: 'read', recordName: 'x' }, ''],
      [{ topic: 'event' }, " Reason: property 'action' is required for topic 'event'"],
      [{ topic: 'event', action: 'emit' }, " Reason: property 'eventName' is required for topic 'event'"],
      [{ topic: 'event', action: 'emit', eventName: 5 }, " Reason: property '.eventName' should be string"],
      [{ topic: 'event', action: 'emit', eventName: '' }, " Reason: property '.eventName' should NOT be shorter than 1 characters"],
      [{ topic: 'record', action: 'read' }, ''],
      [{ topic: 'record', action: 'read', recordName: '' }, ''],
      [{ topic: 'record', action: 'read', recordName: 5 }, ''],
      [{ topic: 'record', action: 'read', recordName: 'x', extra: 1 }, ''],
      [{ topic: 'record', action: 'nope', recordName: 'x' }, ''],
      [{ topic: 'record', action: 'subscribe', recordName: 'x' }, ''],
      [{ topic: 'records', action: 'read', recordName: 'x' }, ''],
      [W('x', 'str'), ''],
      [W('x', 5), ''],
      [W('x', null), ''],
      [{ topic: 'record', action: 'write', recordName: 'x' }, ''],
      [W('x', {}, { version: -2 }), ''],
      [W('x', {}, { version: 1.5 }), ''],
      [W('x', {}, { version: '1' }), ''],
      [W('x', 1, { path: 5 }), ''],
      [W('', {}), ''],
      [{ topic: 'list', action: 'write', listName: 'l', data: [1] }, '']
    ]
    for (const [message, reason] of cases) {
      const r = await post(server, '/api', { body: [message] })
      assertText(r, 400, `Failed to parse JIF object at index 0.${reason}`)
    }
    // the first bad message is named; nothing of the batch runs
    const name = uniq('http-not-run')
    const r = await post(server, '/api', { body: [W(name, { a: 1 }), R(name), 'bad'] })
    assertText(r, 400, "Failed to parse JIF object at index 2. Reason: property '' should be object")
    assert.deepEqual(await api(server, [R(name)]), { result: 'FAILURE', body: [notFound(name)] })
  })

  test('content type, size, routes and methods', T, async () => {
    const body = JSON.stringify({ body: [R('x')] })
    assertText(await post(server, '/api', body, { 'content-type': 'text/plain' }), 415, 'Invalid "Content-Type" header. Supported media types: "application/json"')
    assertText(await post(server, '/api', body, {}), 415, 'Invalid "Content-Type" header. Supported media types: "application/json"')
    const withCharset = await post(server, '/api', { body: [H('x')] }, { 'content-type': 'Application/JSON; charset=utf-8' })
    assert.equal(withCharset.status, 200, withCharset.text)
    // the default limit is 1 MiB (httpServer.options.maxMessageSize)
    const big = JSON.stringify({ body: [W('big', { s: 'x'.repeat(1100000) })] })
    assertText(await post(server, '/api', big), 400, 'Failed to parse body of request: request entity too large')
    // paths are prefixes: /api/anything is the API; elsewhere 404
    assert.deepEqual((await post(server, '/api/v1/whatever', { body: [H('x')] })).json, { result: 'SUCCESS', body: [{ version: -1, success: true }] })
    assertText(await post(server, '/nowhere', { body: [H('x')] }), 404, 'Endpoint not found.')
    const get = await fetch(server.httpUrl + '/api')
    assertText({ status: get.status, headers: get.headers, text: await get.text() }, 400, 'Reading records via HTTP GET is not yet implemented, please use a post request instead.')
    const put = await fetch(server.httpUrl + '/api', { method: 'PUT' })
    assertText({ status: put.status, headers: put.headers, text: await put.text() }, 405, 'Unsupported method. Supported methods: GET, POST, OPTIONS')
    // answers carry CORS headers (allowAllOrigins: true)
    const r = await post(server, '/api', { body: [H('x')] })
    assert.equal(r.headers.get('access-control-allow-origin'), '*')
  })

  test('CORS preflight (OPTIONS)', T, async () => {
    const options = async (headers) => {
      const res = await fetch(server.httpUrl + '/api', { method: 'OPTIONS', headers })
      return { status: res.status, headers: res.headers, text: await res.text() }
    }
    assertText(await options({}), 400, 'Missing header "Access-Control-Request-Method".')
    assertText(await options({ 'access-control-request-method': 'DELETE' }), 403, 'Method DELETE is forbidden. Supported methods: GET, POST, OPTIONS')
    assertText(await options({ 'access-control-request-method': 'POST' }), 400, 'Missing header "Access-Control-Request-Headers".')
    assertText(await options({ 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-secret' }), 403,
      'Header  x-secret is forbidden. Supported headers: X-Requested-With, X-HTTP-Method-Override, Content-Type, Accept')
    const ok = await options({ 'access-control-request-method': 'POST', 'access-control-request-headers': 'Content-Type,accept' })
    assert.equal(ok.status, 204)
    assert.equal(ok.text, '')
    assert.equal(ok.headers.get('access-control-allow-origin'), '*')
    assert.equal(ok.headers.get('access-control-allow-methods'), 'GET, POST, OPTIONS')
    assert.equal(ok.headers.get('access-control-allow-headers'), 'X-Requested-With, X-HTTP-Method-Override, Content-Type, Accept')
  })

  test('POST /api/auth with auth none: 200 (deepstream: "{}", no token)', T, async () => {
    const r = await post(server, '/api/auth', { username: 'someone' })
    assert.equal(r.status, 200, r.text)
    assert.equal(r.json.clientData, undefined)
    if (TARGET === 'deepstream') assert.deepEqual(r.json, {})
  })

  test('recordsync only (deepstream serves these topics): rpc and presence messages are answered as an unsupported topic', { ...T, skip: TARGET === 'deepstream' && 'deepstream serves RPCs and presence' }, async () => {
    const name = uniq('http-mixed')
    const r = await api(server, [
      W(name, { a: 1 }),
      { topic: 'rpc', action: 'make', rpcName: 'addTwo', data: { a: 1 } },
      { topic: 'presence', action: 'query' }
    ])
    assert.equal(r.result, 'PARTIAL_SUCCESS')
    assert.deepEqual(r.body[0], OK)
    for (const [i, topic] of [[1, 'rpc'], [2, 'presence']]) {
      assert.deepEqual(r.body[i], {
        errorTopic: 'parser',
        errorEvent: 1,
        success: false,
        error: `Topic "${topic}" is not served: recordsync serves records (and lists) and events.`
      })
    }
  })

  test('event emit: succeeds, and WebSocket subscribers get the data exactly (numbers, key order, null, no data)', T, async () => {
    const client = await connect(server)
    try {
      const name = uniq('http-event')
      const got = []
      client.event.subscribe(name, (data) => got.push(data))
      await new Promise((resolve) => setTimeout(resolve, 500)) // the client batches subscribes
      const data = { z: 1, a: [1.5, null, 'x'], n: -0.125, big: 12345678901234567 }
      const r = await api(server, [
        { topic: 'event', action: 'emit', eventName: name, data },
        { topic: 'event', action: 'emit', eventName: name }
      ])
      assert.deepEqual(r, { result: 'SUCCESS', body: [OK, OK] })
      await waitFor(() => got.length === 2, 3000, 'both events')
      assert.deepEqual(got[0], data)
      assert.deepEqual(Object.keys(got[0]), ['z', 'a', 'n', 'big'])
      assert.equal(got[1], undefined)
    } finally {
      client.close()
    }
  })

  test('record notify: subscribers are told of what storage holds now; the message succeeds', T, async () => {
    const name = uniq('http-notify')
    assert.deepEqual(await api(server, [W(name, { a: 1 })]), { result: 'SUCCESS', body: [OK] })
    const r = await api(server, [{ topic: 'record', action: 'notify', recordNames: [name, uniq('http-notify-none')] }])
    assert.deepEqual(r, { result: 'SUCCESS', body: [OK] })
  })

  test('recordsync only (deepstream with auth none issues no token): /api/auth gives a token usable on /api', { ...T, skip: TARGET === 'deepstream' && 'deepstream\'s stock auth types issue no token' }, async () => {
    const r = await post(server, '/api/auth', {})
    assert.equal(r.status, 200, r.text)
    assert.equal(typeof r.json.token, 'string')
    assert.deepEqual(await api(server, [H('x')], { token: r.json.token }), { result: 'SUCCESS', body: [{ version: -1, success: true }] })
  })
})

describe('HTTP API with file auth and Valve permissions', () => {
  let server
  const alice = { username: 'alice', password: 'password' }
  const carol = { username: 'carol', password: 'password' }
  before(async () => {
    server = await startServer({ security: { permissions: join(FIXTURES, 'permissions.yml'), users: join(FIXTURES, 'users.yml') } })
  })
  after(async () => { if (server) await server.stop() })

  test('POST /api/auth: 200 with the user\'s clientData; wrong credentials 401', T, async () => {
    const r = await post(server, '/api/auth', alice)
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.json.clientData, { name: 'Alice' })
    if (TARGET === 'deepstream') assert.deepEqual(r.json, { clientData: { name: 'Alice' } })
    assertText(await post(server, '/api/auth', { username: 'alice', password: 'nope' }), 401, 'Invalid authentication data.')
    assertText(await post(server, '/api/auth', {}), 401, 'Invalid authentication data.')
    assert.equal((await post(server, '/api/auth', '{x')).status, 400)
  })

  test('POST /api without valid credentials: 401', T, async () => {
    assertText(await post(server, '/api', { body: [R('a')] }), 401, 'Unsuccessful authentication attempt.')
    assertText(await post(server, '/api', { authData: { username: 'alice', password: 'nope' }, body: [R('a')] }), 401, 'Unsuccessful authentication attempt.')
    assertText(await post(server, '/api', { token: 'not-a-token', body: [R('a')] }), 401, 'Unsuccessful authentication attempt.')
  })

  test('permissions on every message: MESSAGE_DENIED (115) naming the action', T, async () => {
    const name = `admin/${uniq('x')}`
    const r = await api(server, [W(name, { a: 1 }), R(name), H(name), D(name), W(name, 1, { path: 'p' })], { authData: alice })
    assert.deepEqual(r, {
      result: 'FAILURE',
      body: [denied(16, 'CREATEANDUPDATE'), denied(3, 'READ'), denied(5, 'HEAD'), denied(9, 'DELETE'), denied(17, 'CREATEANDPATCH')]
    })
    const ok = await api(server, [W(name, { a: 1 })], { authData: carol })
    assert.deepEqual(ok, { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [R(name), H(name)], { authData: carol }), { result: 'SUCCESS', body: [{ version: 1, data: { a: 1 }, success: true }, { version: 1, success: true }] })
    assert.deepEqual(await api(server, [R(name)], { authData: alice }), { result: 'FAILURE', body: [denied(3, 'READ')] })
  })

  test('event emit checked against the event rules: refused as deepstream words it', T, async () => {
    const E = (eventName, data) => ({ topic: 'event', action: 'emit', eventName, data })
    const eventDenied = { success: false, error: "Message denied. Action 'emit' is not permitted.", errorEvent: 'MESSAGE_DENIED', errorAction: 'emit', errorTopic: 'event' }
    const r = await api(server, [E(`ops/${uniq('e')}`, 1), E(`levels/${uniq('e')}`, { level: 9 }), E(`free/${uniq('e')}`, { level: 9 })], { authData: alice })
    assert.deepEqual(r, { result: 'PARTIAL_SUCCESS', body: [eventDenied, eventDenied, OK] })
    assert.deepEqual(JSON.stringify(r.body[0]), JSON.stringify(eventDenied), 'key order')
    assert.deepEqual(await api(server, [E(`ops/${uniq('e')}`, 1)], { authData: carol }), { result: 'SUCCESS', body: [OK] })
  })

  test('recordsync only (deepstream 7 gives an HTTP emit\'s publish rule no data, so it refuses): a publish rule reads the payload', { ...T, skip: TARGET === 'deepstream' && 'deepstream\'s HTTP emit rules see no data' }, async () => {
    const E = (eventName, data) => ({ topic: 'event', action: 'emit', eventName, data })
    const r = await api(server, [E(`levels/${uniq('e')}`, { level: 1 })], { authData: alice })
    assert.deepEqual(r, { result: 'SUCCESS', body: [OK] })
  })

  test('rules read the user and the data: PARTIAL_SUCCESS', T, async () => {
    const id = uniq('p').replaceAll('/', '-')
    const r = await api(server, [
      W(`posts/${id}-1`, { author: 'bob' }),
      W(`posts/${id}-2`, { author: 'alice' }),
      W('settings/alice', { theme: 'dark' }),
      W('settings/bob', { theme: 'dark' }),
      W(`locked/${id}`, { a: 1 }),
      W(`titles/${id}`, { title: 5 }),
      W(`titles/${id}`, { title: 'fine' }),
      // e2e: Creating and setting a record with create but not write permissions
      W(`locked/${id}`, 'Morty Smith', { path: 'user' })
    ], { authData: alice })
    assert.deepEqual(r, {
      result: 'PARTIAL_SUCCESS',
      body: [denied(16, 'CREATEANDUPDATE'), OK, OK, denied(16, 'CREATEANDUPDATE'), denied(16, 'CREATEANDUPDATE'), denied(16, 'CREATEANDUPDATE'), OK, denied(17, 'CREATEANDPATCH')]
    })
  })

  test('recordsync only (deepstream\'s file auth issues no token): the token from /api/auth acts as its user', { ...T, skip: TARGET === 'deepstream' && 'deepstream\'s file auth issues no token' }, async () => {
    const a = await post(server, '/api/auth', alice)
    const c = await post(server, '/api/auth', carol)
    assert.equal(typeof a.json.token, 'string')
    assert.equal(typeof c.json.token, 'string')
    assert.notEqual(a.json.token, c.json.token)
    assert.deepEqual(c.json.clientData, { name: 'Carol' })
    const name = `admin/${uniq('t')}`
    assert.deepEqual(await api(server, [W(name, { by: 'carol' })], { token: c.json.token }), { result: 'SUCCESS', body: [OK] })
    assert.deepEqual(await api(server, [R(name)], { token: a.json.token }), { result: 'FAILURE', body: [denied(3, 'READ')] })
    // authData wins over a token, as in deepstream
    assert.deepEqual(await api(server, [R(name)], { token: c.json.token, authData: alice }), { result: 'FAILURE', body: [denied(3, 'READ')] })
  })
})

describe('HTTP API endpoint options', () => {
  let server
  before(async () => {
    server = await startServer({
      http: {
        maxMessageSize: 4096,
        endpoint: { allowAuthData: false, enableAuthEndpoint: false, postPath: '/data', getPath: '/data', authPath: '/login' }
      }
    })
  })
  after(async () => { if (server) await server.stop() })

  test('postPath, allowAuthData: false, enableAuthEndpoint: false, maxMessageSize', T, async () => {
    const name = uniq('http-opts')
    assert.deepEqual((await post(server, '/data', { body: [W(name, { a: 1 })] })).json, { result: 'SUCCESS', body: [OK] })
    assertText(await post(server, '/api', { body: [R(name)] }), 404, 'Endpoint not found.')
    assertText(await post(server, '/data', { authData: {}, body: [R(name)] }), 400, 'Authentication using authData is disabled. Try using a token instead.')
    assertText(await post(server, '/login', {}), 404, 'Endpoint not found.')
    assertText(await post(server, '/data', { body: [W(name, { s: 'x'.repeat(5000) })] }), 400, 'Failed to parse body of request: request entity too large')
    assert.deepEqual((await post(server, '/data', { body: [R(name)] })).json, { result: 'SUCCESS', body: [{ version: 1, data: { a: 1 }, success: true }] })
  })
})

describe('HTTP API with allowed origins', () => {
  let server
  before(async () => {
    server = await startServer({ http: { allowAllOrigins: false, origins: ['https://example.com'], origin: 'https://example.com' } })
  })
  after(async () => { if (server) await server.stop() })

  test('only listed origins; their answers allow that origin with credentials', T, async () => {
    const body = { body: [H('x')] }
    assertText(await post(server, '/api', body), 403, 'CORS is configured for this. All requests must set a valid "Origin" header.')
    assertText(await post(server, '/api', body, { ...JSON_TYPE, origin: 'https://evil.example' }), 403, 'Origin "https://evil.example" is forbidden.')
    const r = await post(server, '/api', body, { ...JSON_TYPE, origin: 'https://example.com' })
    assert.equal(r.status, 200, r.text)
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://example.com')
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true')
    assert.equal(r.headers.get('vary'), 'Origin')
  })
})

/** A GET with exactly these headers (node:http, which, unlike fetch, sends a Host header as given). */
function rawGet (server, path, headers) {
  return new Promise((resolve, reject) => {
    const url = new URL(server.httpUrl)
    const req = http.get({ host: url.hostname, port: url.port, path, headers, setHost: !headers.host }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode, headers: new Headers(res.headers), text }))
    })
    req.on('error', reject)
  })
}

describe('HTTP origin checks on the health check', () => {
  test('every origin allowed (the default): the health check says so', T, async () => {
    const server = await startServer({})
    try {
      const r = await rawGet(server, '/health-check', {})
      assert.equal(r.status, 200, r.text)
      assert.equal(r.headers.get('access-control-allow-origin'), '*')
    } finally { await server.stop() }
  })

  test('allowAllOrigins false: the health check is refused without a listed origin, allowed with one', T, async () => {
    const server = await startServer({ http: { allowAllOrigins: false, origins: ['https://example.com'], origin: 'https://example.com' } })
    try {
      assertText(await rawGet(server, '/health-check', {}), 403, 'CORS is configured for this. All requests must set a valid "Origin" header.')
      assertText(await rawGet(server, '/health-check', { origin: 'https://evil.example' }), 403, 'Origin "https://evil.example" is forbidden.')
      for (const headers of [{ origin: 'https://example.com' }, { referer: 'https://example.com' }]) {
        const r = await rawGet(server, '/health-check', headers)
        assert.equal(r.status, 200, r.text)
        assert.equal(r.headers.get('access-control-allow-origin'), 'https://example.com')
        assert.equal(r.headers.get('access-control-allow-credentials'), 'true')
        assert.equal(r.headers.get('vary'), 'Origin')
      }
    } finally { await server.stop() }
  })

  test('hostUrl: a request with another Host is "Forbidden Host." before its origin is looked at', T, async () => {
    const hostUrl = 'db.example:6020'
    const server = await startServer({ http: { allowAllOrigins: false, origins: ['https://example.com'], origin: 'https://example.com', hostUrl } })
    try {
      const origin = 'https://example.com'
      assertText(await rawGet(server, '/health-check', { origin }), 403, 'Forbidden Host.')
      assertText(await rawGet(server, '/health-check', { host: 'other.example:6020', origin }), 403, 'Forbidden Host.')
      assertText(await rawGet(server, '/health-check', { host: hostUrl }), 403, 'CORS is configured for this. All requests must set a valid "Origin" header.')
      const ok = await rawGet(server, '/health-check', { host: hostUrl, origin })
      assert.equal(ok.status, 200, ok.text)
      assert.equal(ok.headers.get('access-control-allow-origin'), origin)
      const body = JSON.stringify({ body: [H('x')] })
      assertText(await post(server, '/api', body, { ...JSON_TYPE, origin }), 403, 'Forbidden Host.')
    } finally { await server.stop() }
  })
})
