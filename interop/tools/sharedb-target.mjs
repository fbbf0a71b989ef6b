// Starts the ShareDB server under test, runs a command against it, stops the server, and exits
// with the command's status. Used by run.sh for the sharedb-peer / sharedb-recordsync targets.
//
//   node tools/sharedb-target.mjs peer|recordsync -- COMMAND [ARGS...]
//
// peer:       the reference ShareDB 7 server (peers/sharedb-server.js, in memory, presence on)
// recordsync: `recordsync serve` at $RECORDSYNC_BIN on a fresh data dir (as lib/server.mjs starts it)
// Both on a free port on 127.0.0.1. The command gets SHAREDB_URL (ws://127.0.0.1:PORT/sharedb),
// SHAREDB_TARGET (peer | recordsync) and, for recordsync, DEEPSTREAM_URL (the same server's
// ws://127.0.0.1:PORT/deepstream).

import { spawn } from 'node:child_process'
import { startServer } from '../lib/server.mjs'

const [kind, sep, ...command] = process.argv.slice(2)
if (!['peer', 'recordsync'].includes(kind) || sep !== '--' || command.length === 0) {
  console.error('usage: node tools/sharedb-target.mjs peer|recordsync -- COMMAND [ARGS...]')
  process.exit(2)
}

const server = await startServer({ target: kind === 'peer' ? 'sharedb-peer' : 'recordsync' })
const env = { ...process.env, SHAREDB_URL: server.sharedbUrl, SHAREDB_TARGET: kind }
if (kind === 'recordsync') env.DEEPSTREAM_URL = server.url
else delete env.DEEPSTREAM_URL
console.error(`interop: ${kind} ShareDB server at ${server.sharedbUrl} (log: ${server.logFile})`)

const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env })
const stop = async (code) => {
  await server.stop()
  process.exit(code)
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { child.kill(sig) })
child.on('exit', (code, signal) => {
  if (code !== 0) console.error(`interop: tests ended with ${signal || code}; server log tail:\n${server.logTail(30)}`)
  stop(code === null ? 1 : code)
})
