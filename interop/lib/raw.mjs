// A raw WebSocket peer for the cases the real client cannot produce: garbage frames, and
// hand-built protobuf messages (built and parsed with @deepstream/protobuf itself).

import { createRequire } from 'node:module'
import WebSocket from 'ws'
import { waitFor } from './client.mjs'

const require = createRequire(import.meta.url)
const { getMessage } = require('@deepstream/protobuf/dist/src/message-builder')
const { parse } = require('@deepstream/protobuf/dist/src/message-parser')
export const P = require('@deepstream/protobuf/dist/types/all')

/** Action name of a parsed message, e.g. 'INVALID_MESSAGE'. */
export function actionName (m) {
  const byTopic = {
    [P.TOPIC.PARSER]: P.PARSER_ACTION,
    [P.TOPIC.CONNECTION]: P.CONNECTION_ACTION,
    [P.TOPIC.AUTH]: P.AUTH_ACTION,
    [P.TOPIC.RECORD]: P.RECORD_ACTION
  }[m.topic]
  return byTopic ? byTopic[m.action] : String(m.action)
}

/** A message that tells the peer its input was bad. */
export function isErrorReply (m) {
  if (m.topic === P.TOPIC.PARSER || m.isError === true) return true
  return /ERROR|INVALID|UNKNOWN/.test(actionName(m) || '')
}

/**
 * Opens a raw socket. `json` selects text frames (JSON transport). Collects incoming messages
 * (binary frames parsed with the protobuf parser; text frames with JSON.parse) and the close.
 */
export async function rawSocket (url, { json = false } = {}) {
  const ws = new WebSocket(url)
  const peer = { ws, inbox: [], closed: null, json }
  ws.on('message', (data, isBinary) => {
    if (isBinary) peer.inbox.push(...parse(data))
    else {
      try { peer.inbox.push(JSON.parse(data.toString())) } catch { peer.inbox.push({ unparseable: data.toString() }) }
    }
  })
  ws.on('close', (code, reason) => { peer.closed = { code, reason: reason.toString() } })
  ws.on('error', (e) => { peer.error = e })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  peer.send = (m) => ws.send(json ? JSON.stringify(m) : getMessage(m, false))
  peer.sendRaw = (bytesOrText) => ws.send(bytesOrText)
  peer.expect = (pred, what, ms = 3000) => waitFor(() => peer.inbox.find(pred), ms, what)
  peer.close = () => ws.terminate()
  /** Resolves with 'close' or the error message, whichever comes first; fails after ms. */
  peer.expectErrorOrClose = (ms = 3000, since = 0) => waitFor(() => {
    if (peer.closed) return { closed: peer.closed }
    const m = peer.inbox.slice(since).find(isErrorReply)
    return m ? { message: m } : null
  }, ms, 'an error reply or a close')
  return peer
}

/** A raw socket that has completed the handshake and logged in (auth none). */
export async function rawClient (url, opts = {}) {
  const peer = await rawSocket(url, opts)
  peer.send({ topic: P.TOPIC.CONNECTION, action: P.CONNECTION_ACTION.CHALLENGE, url, protocolVersion: '0.1a', sdkVersion: 'raw', sdkType: 'interop' })
  await peer.expect((m) => m.topic === P.TOPIC.CONNECTION && m.action === P.CONNECTION_ACTION.ACCEPT, 'CONNECTION ACCEPT')
  peer.send({ topic: P.TOPIC.AUTH, action: P.AUTH_ACTION.REQUEST, data: '{}' })
  await peer.expect((m) => m.topic === P.TOPIC.AUTH && m.action === P.AUTH_ACTION.AUTH_SUCCESSFUL, 'AUTH_SUCCESSFUL')
  return peer
}
