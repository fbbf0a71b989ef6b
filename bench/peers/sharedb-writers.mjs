// The durable-write scenario against ShareDB, with ShareDB's own client and protocol:
// W concurrent writers, each on its own connection and its own document, each submitting
// one op at a time and waiting for its acknowledgement (which ShareDB sends once the op is
// committed to PostgreSQL).
//
//   node sharedb-writers.mjs --url ws://127.0.0.1:PORT --writers 100 --warmup 1 --seconds 5
//
// Prints `MEASURE_START` when the warm-up ends, `MEASURE_END` when the measured window
// ends (the harness reads the server's CPU at both), then one JSON line with the result.
import WebSocket from 'ws'
import ShareDB from 'sharedb/lib/client/index.js'

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]])
  return acc
}, []))
const url = args.url
const writers = Number(args.writers || 100)
const warmup = Number(args.warmup || 1) * 1000
const seconds = Number(args.seconds || 5) * 1000
const timeout = Number(args.timeout || 60) * 1000

setTimeout(() => { console.error('sharedb-writers: timed out'); process.exit(2) }, timeout).unref()

let phase = 'setup'
let acks = 0
let errors = 0
const latencies = []

function writer (i) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url)
    const connection = new ShareDB.Connection(socket)
    const doc = connection.get('bench', `w${i}`)
    doc.fetch((err) => {
      if (err) return reject(err)
      const ready = (err) => {
        if (err) return reject(err)
        resolve({ connection, socket, doc })
      }
      if (doc.type === null) doc.create({ n: 0 }, ready)
      else ready()
    })
  })
}

function loop (w) {
  return new Promise((resolve) => {
    const next = () => {
      if (phase === 'done') return resolve()
      const t = process.hrtime.bigint()
      w.doc.submitOp([{ p: ['n'], na: 1 }], (err) => {
        if (phase === 'measure') {
          if (err) errors++
          else {
            acks++
            latencies.push(Number(process.hrtime.bigint() - t) / 1e6)
          }
        }
        next()
      })
    }
    next()
  })
}

const all = await Promise.all(Array.from({ length: writers }, (_, i) => writer(i)))
phase = 'warmup'
const loops = all.map(loop)
await new Promise((r) => setTimeout(r, warmup))
phase = 'measure'
console.log('MEASURE_START')
const start = process.hrtime.bigint()
await new Promise((r) => setTimeout(r, seconds))
const elapsed = Number(process.hrtime.bigint() - start) / 1e9
phase = 'done'
console.log('MEASURE_END')
await Promise.all(loops)
latencies.sort((a, b) => a - b)
const q = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null
console.log(JSON.stringify({
  writers, acks, errors, seconds: elapsed, acks_per_s: acks / elapsed,
  ack_p50_ms: q(0.5), ack_p99_ms: q(0.99), ack_p999_ms: q(0.999), ack_max_ms: latencies.length ? latencies[latencies.length - 1] : null
}))
for (const w of all) { w.connection.close() }
process.exit(0)
