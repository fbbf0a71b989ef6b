// ShareDB 7 on PostgreSQL, served over WebSocket, for the durable-write comparison.
//
//   node sharedb-server.mjs --port PORT [--pg postgres://postgres@127.0.0.1:5432/test]
//                           [--schema recordsync_bench] [--pool 20]
//
// Creates (or empties) the sharedb-postgres tables in their own schema, so nothing else in
// the database is touched, then serves ws://127.0.0.1:PORT/ and GET /health-check.
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { WebSocketServer } from 'ws'
import ShareDB from 'sharedb'
import WebSocketJSONStream from '@teamwork/websocket-json-stream'
import pg from 'pg'

const require = createRequire(import.meta.url)
const PostgresDB = require('sharedb-postgres')

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]])
  return acc
}, []))
const port = Number(args.port || 0)
const connectionString = args.pg || 'postgres://postgres@127.0.0.1:5432/test'
const schema = args.schema || 'recordsync_bench'
const poolSize = Number(args.pool || 20)
if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema name ${schema}`)

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

const db = new PostgresDB({
  connectionString,
  max: poolSize,
  options: `-c search_path=${schema}`,
  // The harness finds this pool's server processes by this name, to count their CPU.
  application_name: 'recordsync-bench-sharedb'
})
const backend = new ShareDB({ db })

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/health-check' ? 200 : 404)
  res.end()
})
const wss = new WebSocketServer({ server })
wss.on('connection', (ws) => backend.listen(new WebSocketJSONStream(ws)))
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
