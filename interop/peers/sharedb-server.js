// The reference ShareDB 7 server of the interop suite: the npm `sharedb` backend with the
// in-memory `sharedb-mingo-memory` database (Mongo-style query filters), presence enabled,
// served over WebSocket at ws://HOST:PORT/sharedb with one JSON message per text frame
// (`ws` + `@teamwork/websocket-json-stream`), as a ShareDB user deploys it.
//
//   node peers/sharedb-server.js PORT [HOST]        (HOST default 127.0.0.1)
//
// Also answers GET /health-check with 200 (how the suite knows it is up). Stops on SIGTERM/SIGINT.

import http from 'node:http'
import { WebSocketServer } from 'ws'
import ShareDB from 'sharedb'
import ShareDBMingoMemory from 'sharedb-mingo-memory'
import WebSocketJSONStream from '@teamwork/websocket-json-stream'

const port = Number(process.argv[2])
const host = process.argv[3] || '127.0.0.1'
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node peers/sharedb-server.js PORT [HOST]')
  process.exit(2)
}

const backend = new ShareDB({
  db: new ShareDBMingoMemory(),
  presence: true,
  // a presence error of one peer is not forwarded to the others (sharedb 7 warns without it)
  doNotForwardSendPresenceErrorsToClient: true
})

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health-check') {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('OK')
    return
  }
  res.writeHead(404)
  res.end()
})

const wss = new WebSocketServer({ server, path: '/sharedb' })
wss.on('connection', (ws) => {
  const stream = new WebSocketJSONStream(ws)
  // a frame that is not JSON makes the stream emit 'error' (and close the socket with 1011);
  // without a listener that error would end the whole process
  stream.on('error', (err) => console.error(`sharedb stream error: ${err.message}`))
  backend.listen(stream)
})

server.listen(port, host, () => {
  console.log(`sharedb 7 reference server on ws://${host}:${port}/sharedb`)
})

function shutdown () {
  for (const client of wss.clients) client.terminate()
  wss.close()
  backend.close(() => server.close(() => process.exit(0)))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
