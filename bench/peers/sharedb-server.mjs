// ShareDB 7, served over WebSocket for the benchmark: on PostgreSQL (sharedb-postgres 5) or
// in memory (sharedb-mingo-memory 4: ShareDB's MemoryDB with Mongo-style query filters, the
// database the interop suite's reference server runs).
//
//   node sharedb-server.mjs --port PORT [--db postgres|memory]
//                           [--pg postgres://postgres@127.0.0.1:5432/test]
//                           [--schema recordsync_bench] [--pool 20]
//
// On PostgreSQL it creates (or empties) the sharedb-postgres tables in their own schema, so
// nothing else in the database is touched. Then it serves ws://127.0.0.1:PORT/ (any path)
// and GET /health-check, and prints `LISTENING PORT`.
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { WebSocketServer } from 'ws'
import ShareDB from 'sharedb'
import WebSocketJSONStream from '@teamwork/websocket-json-stream'
import pg from 'pg'
import ShareDBMingoMemory from 'sharedb-mingo-memory'

const require = createRequire(import.meta.url)
const PostgresDB = require('sharedb-postgres')

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]])
  return acc
}, []))
const port = Number(args.port || 0)
const kind = args.db || 'postgres'
if (kind !== 'postgres' && kind !== 'memory') throw new Error(`--db must be postgres or memory, not ${kind}`)
const connectionString = args.pg || 'postgres://postgres@127.0.0.1:5432/test'
const schema = args.schema || 'recordsync_bench'
const poolSize = Number(args.pool || 20)
if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema name ${schema}`)

async function postgres () {
  // Tables in a schema of their own, made afresh on every start (structure.sql's migrations
  // are not idempotent).
  const admin = new pg.Client({ connectionString })
  await admin.connect()
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.query(`SET search_path TO ${schema}`)
  const structure = readFileSync(require.resolve('sharedb-postgres/structure.sql'), 'utf8')
  await admin.query(structure)
  await admin.end()
  return new PostgresDB({
    connectionString,
    max: poolSize,
    options: `-c search_path=${schema}`,
    // The harness finds this pool's server processes by this name, to count their CPU.
    application_name: 'recordsync-bench-sharedb'
  })
}

const db = kind === 'memory' ? new ShareDBMingoMemory() : await postgres()
const backend = new ShareDB({ db })

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/health-check' ? 200 : 404)
  res.end()
})
const wss = new WebSocketServer({ server })
wss.on('connection', (ws) => {
  const stream = new WebSocketJSONStream(ws)
  // A frame that is not JSON makes the stream emit 'error'; unheard, it would end the process.
  stream.on('error', (err) => console.error(`sharedb stream error: ${err.message}`))
  backend.listen(stream)
})
server.listen(port, '127.0.0.1', () => {
  console.log(`LISTENING ${server.address().port}`)
})

const stop = () => {
  for (const ws of wss.clients) ws.terminate()
  server.close()
  backend.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
