// The recordsync command-line client, the binary under test (RECORDSYNC_BIN).

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** `recordsync set NAME JSON` against the server at `port`, logged in with `auth` if given. */
export async function cliSet (port, name, json, auth) {
  const args = ['set', '--url', `127.0.0.1:${port}`, name, json]
  if (auth) args.push('--auth', JSON.stringify(auth))
  await run(process.env.RECORDSYNC_BIN, args, { timeout: 20000 })
}
