#!/usr/bin/env node
// A small WebSocket proxy that prints every deepstream message passing through it.
//
//   node tools/trace.mjs --listen 7000 --upstream ws://127.0.0.1:6020 [--out trace.jsonl] [--no-hex] [--pings]
//
// A client connecting to ws://127.0.0.1:7000/<path> is relayed to <upstream>/<path>, so both
// /deepstream (binary protobuf) and /deepstream-json (JSON transport) can be traced. Each
// message becomes one JSON line:
//   {"t":12,"conn":1,"dir":"c2s","path":"/deepstream","topic":"RECORD","action":"SUBSCRIBECREATEANDREAD",
//    "msg":{...fields present on the wire...},"hex":"..."}
// Binary frames are decoded with @deepstream/protobuf's own parser; `msg` holds exactly the
// fields that were on the wire (protobufjs sets own properties only for fields it decoded), so
// `version: 0` in a line means the peer really sent it. Text frames (JSON transport) are
// printed as parsed JSON, with `text` holding the frame verbatim.
//
// Also usable as a module: `startTrace({ upstream, port, onLine })` (see tools/capture.mjs).

import { createRequire } from 'node:module'
import { createWriteStream } from 'node:fs'
import { WebSocketServer, WebSocket } from 'ws'

const require = createRequire(import.meta.url)
const { parse } = require('@deepstream/protobuf/dist/src/message-parser')
const { getMessage } = require('@deepstream/protobuf/dist/src/message-builder')
const T = require('@deepstream/protobuf/dist/types/all')

const ACTIONS = {
  [T.TOPIC.PARSER]: T.PARSER_ACTION,
  [T.TOPIC.CONNECTION]: T.CONNECTION_ACTION,
  [T.TOPIC.AUTH]: T.AUTH_ACTION,
  [T.TOPIC.EVENT]: T.EVENT_ACTION,
  [T.TOPIC.RECORD]: T.RECORD_ACTION,
  [T.TOPIC.RPC]: T.RPC_ACTION,
  [T.TOPIC.PRESENCE]: T.PRESENCE_ACTION,
  [T.TOPIC.MONITORING]: T.MONITORING_ACTION,
  [T.TOPIC.CLUSTER]: T.CLUSTER_ACTION,
  [T.TOPIC.LOCK]: T.LOCK_ACTION
}

/** Reads the varint length prefix at `pos`; returns [length, bytesUsed]. */
function readVarint (buf, pos) {
  let value = 0
  let shift = 0
  let i = pos
  while (i < buf.length) {
    const b = buf[i++]
    value += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) return [value, i - pos]
    shift += 7
  }
  return [-1, 0]
}

/** Splits one binary frame into its length-delimited messages (normally exactly one). */
export function splitFrame (buf) {
  const parts = []
  let pos = 0
  while (pos < buf.length) {
    const [len, used] = readVarint(buf, pos)
    if (len < 0 || pos + used + len > buf.length) {
      parts.push(buf.subarray(pos)) // malformed: hand the rest to the parser as is
      break
    }
    parts.push(buf.subarray(pos, pos + used + len))
    pos += used + len
  }
  return parts
}

/** Plain object of the fields that were present on the wire, with enum names alongside. */
export function describe (message) {
  const msg = {}
  for (const [k, v] of Object.entries(message)) {
    if (Array.isArray(v) && v.length === 0) continue // absent repeated field
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue // absent map
    msg[k] = v
  }
  const actions = ACTIONS[message.topic] || {}
  const out = { topic: T.TOPIC[message.topic] ?? message.topic, action: actions[message.action] ?? message.action }
  if (message.originalAction !== undefined) out.originalAction = actions[message.originalAction] ?? message.originalAction
  out.msg = msg
  return out
}

function decodeBinary (data) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)])
  const parts = splitFrame(buf)
  return parts.map((part) => {
    const m = parse(part)[0]
    const line = { ...describe(m), frameMessages: parts.length, hex: part.toString('hex') }
    // the parser answers bytes it cannot decode with a bare PARSER/ERROR of its own
    if (m.topic === T.TOPIC.PARSER && m.action === T.PARSER_ACTION.ERROR && Object.keys(m).length === 2) line.undecodable = true
    return line
  })
}

function decodeText (text) {
  let parsed
  try { parsed = JSON.parse(text) } catch { return [{ topic: 'UNPARSEABLE', action: null, text }] }
  const list = Array.isArray(parsed) ? parsed : [parsed]
  return list.map((m) => {
    const actions = ACTIONS[m.topic] || {}
    const out = { topic: T.TOPIC[m.topic] ?? m.topic, action: actions[m.action] ?? m.action }
    if (m.originalAction !== undefined) out.originalAction = actions[m.originalAction] ?? m.originalAction
    out.msg = m
    out.text = text
    return out
  })
}

/**
 * Applies transform(dir, message) to each message of a frame. Returns the frames to forward:
 * the original bytes for an unchanged message, a re-encoded frame for a changed one, nothing
 * for a dropped one (transform returned null).
 */
function transformFrame (data, isBinary, dir, transform) {
  if (isBinary) {
    const buf = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)])
    const out = []
    for (const part of splitFrame(buf)) {
      const m = parse(part)[0]
      const r = transform(dir, m, 'binary')
      if (r === null) continue
      out.push(r === m ? part : getMessage(r, false))
    }
    return out
  }
  let m
  try { m = JSON.parse(data.toString('utf8')) } catch { return [data] }
  const r = transform(dir, m, 'json')
  if (r === null) return []
  return [r === m ? data : JSON.stringify(r)]
}

/**
 * Starts the proxy. Returns { port, close(), url(path) }.
 * onLine(obj) receives each decoded message (pings left out unless `pings`).
 * transform(dir, message, transport), when given, may change (return a new object) or drop
 * (return null) each message before it is forwarded; used by tools/mutations.mjs.
 */
export async function startTrace ({ upstream, port = 0, host = '127.0.0.1', onLine = () => {}, hex = true, pings = false, label, transform, unref = false }) {
  const wss = new WebSocketServer({ host, port })
  await new Promise((resolve, reject) => { wss.once('listening', resolve); wss.once('error', reject) })
  if (unref) wss._server?.unref()
  const t0 = Date.now()
  let nextConn = 1
  const sockets = new Set()

  const emit = (conn, dir, path, items) => {
    for (const item of items) {
      if (!pings && item.topic === 'CONNECTION' && (item.action === 'PING' || item.action === 'PONG')) continue
      const line = { t: Date.now() - t0, conn: label ? label(conn) : conn, dir, path, ...item }
      if (!hex) delete line.hex
      onLine(line)
    }
  }

  wss.on('connection', (client, req) => {
    const conn = nextConn++
    const path = req.url
    const up = new WebSocket(upstream.replace(/\/$/, '') + path)
    sockets.add(client); sockets.add(up)
    const pending = []
    const decode = (data, isBinary) => isBinary ? decodeBinary(data) : decodeText(data.toString('utf8'))

    const frames = (data, isBinary, dir) => transform ? transformFrame(data, isBinary, dir, transform) : [data]
    client.on('message', (data, isBinary) => {
      emit(conn, 'c2s', path, decode(data, isBinary))
      for (const f of frames(data, isBinary, 'c2s')) {
        if (up.readyState === WebSocket.OPEN) up.send(f, { binary: isBinary })
        else pending.push([f, isBinary])
      }
    })
    up.on('open', () => { for (const [d, b] of pending.splice(0)) up.send(d, { binary: b }) })
    up.on('message', (data, isBinary) => {
      emit(conn, 's2c', path, decode(data, isBinary))
      for (const f of frames(data, isBinary, 's2c')) {
        if (client.readyState === WebSocket.OPEN) client.send(f, { binary: isBinary })
      }
    })
    const closeBoth = (who) => (code, reason) => {
      onLine({ t: Date.now() - t0, conn: label ? label(conn) : conn, dir: who === 'client' ? 'c2s' : 's2c', path, event: 'close', code, reason: reason?.toString() })
      try { client.close() } catch {}
      try { up.close() } catch {}
    }
    client.on('close', closeBoth('client'))
    up.on('close', closeBoth('server'))
    client.on('error', () => {})
    up.on('error', () => { try { client.terminate() } catch {} })
  })

  return {
    port: wss.address().port,
    url: (path = '/deepstream') => `ws://${host}:${wss.address().port}${path}`,
    close: () => new Promise((resolve) => {
      for (const s of sockets) { try { s.terminate() } catch {} }
      wss.close(() => resolve())
    })
  }
}

async function main () {
  const args = process.argv.slice(2)
  const opt = (name, dflt) => {
    const i = args.indexOf(name)
    return i >= 0 ? args[i + 1] : dflt
  }
  const upstream = opt('--upstream')
  const port = Number(opt('--listen', '0'))
  if (!upstream) {
    console.error('usage: node tools/trace.mjs --listen PORT --upstream ws://HOST:PORT [--out FILE.jsonl] [--no-hex] [--pings]')
    process.exit(2)
  }
  const outFile = opt('--out')
  const out = outFile ? createWriteStream(outFile, { flags: 'a' }) : process.stdout
  const trace = await startTrace({
    upstream,
    port,
    hex: !args.includes('--no-hex'),
    pings: args.includes('--pings'),
    onLine: (line) => out.write(JSON.stringify(line) + '\n')
  })
  console.error(`trace: ws://127.0.0.1:${trace.port} -> ${upstream}`)
  const stop = async () => { await trace.close(); process.exit(0) }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

if (import.meta.url === `file://${process.argv[1]}`) main()
