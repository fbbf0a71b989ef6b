// Starts the server under test: the real deepstream server (from node_modules) or the
// recordsync binary, chosen by INTEROP_TARGET (deepstream | recordsync, default recordsync).
//
// Both listen on 127.0.0.1 on a free ephemeral port and expose the same doors:
//   ws://127.0.0.1:PORT/deepstream       binary protobuf transport (the client default)
//   ws://127.0.0.1:PORT/deepstream-json  JSON transport (client socketOptions.jsonTransportMode)
//   GET http://127.0.0.1:PORT/health-check
//
// The handle offers url, jsonUrl, stop() (SIGTERM, wait for exit), kill() (SIGKILL) and
// restart() (same port, same data dir). Server output goes to a log file; when the server
// does not come up, the tail of that log is printed.

import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync, openSync, closeSync, readFileSync, mkdirSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import net from 'node:net'
import http from 'node:http'

const here = dirname(fileURLToPath(import.meta.url))
export const INTEROP_DIR = resolve(here, '..')
export const REPO_DIR = resolve(INTEROP_DIR, '..')

export const TARGET = process.env.INTEROP_TARGET || 'recordsync'
if (TARGET !== 'deepstream' && TARGET !== 'recordsync') {
  throw new Error(`INTEROP_TARGET must be "deepstream" or "recordsync", got "${TARGET}"`)
}

/** True when the target keeps records across restarts (the in-memory deepstream does not). */
export const TARGET_IS_DURABLE = TARGET === 'recordsync'

const STARTUP_TIMEOUT_MS = Number(process.env.INTEROP_STARTUP_TIMEOUT_MS || 20000)
const STOP_TIMEOUT_MS = 10000

/** Asks the kernel for a free port on 127.0.0.1. */
export function freePort () {
  return new Promise((resolveP, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolveP(port))
    })
  })
}

function healthCheck (port, headers = {}) {
  return new Promise((resolveP) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health-check', timeout: 1000, headers }, (res) => {
      res.resume()
      resolveP(res.statusCode === 200)
    })
    req.on('timeout', () => { req.destroy(); resolveP(false) })
    req.on('error', () => resolveP(false))
  })
}

/** The headers the start-up health check needs past the HTTP options' origin checks. */
function startupHeaders (h) {
  const headers = {}
  if (h && h.origin) headers.origin = h.origin
  if (h && h.hostUrl) headers.host = h.hostUrl
  return headers
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function logTail (logFile, lines = 40) {
  try {
    const text = readFileSync(logFile, 'utf8')
    return text.split('\n').slice(-lines).join('\n')
  } catch (e) {
    return `(no log: ${e.message})`
  }
}

const DEEPSTREAM_PERMISSIONS = `record:
  "*":
    create: true
    write: true
    read: true
    delete: true
    listen: true
    notify: true
event:
  "*":
    publish: true
    subscribe: true
    listen: true
rpc:
  "*":
    provide: true
    request: true
presence:
  "*":
    allow: true
`

function endpoint (type, urlPath) {
  return `  - type: ${type}
    options:
      urlPath: ${urlPath}
      heartbeatInterval: 30000
      outgoingBufferTimeout: 0
      maxBufferByteSize: 100000
      logInvalidAuthData: false
      unauthenticatedClientTimeout: 180000
      maxAuthAttempts: 3
      maxMessageSize: 1048576
`
}

/**
 * The auth and permission sections for a server started with `security` (see startServer):
 * file auth with deepstream's default hash options over users.yml, and Valve permissions
 * from permissions.yml. Both servers read the same text.
 */
function securityConfig () {
  return `auth:
  - type: file
    options:
      users: fileLoad(users.yml)
      hash: md5
      iterations: 100
      keyLength: 32
permission:
  type: config
  options:
    permissions: fileLoad(permissions.yml)
    maxRuleIterations: 3
    cacheEvacuationInterval: 60000
`
}

/** The `listen` section: deepstream's defaults of the suite, `shuffleProviders` as asked. */
function listenConfig (listen = {}) {
  const shuffle = listen.shuffleProviders === undefined ? true : listen.shuffleProviders
  return `listen:
  shuffleProviders: ${shuffle}
  responseTimeout: 500
  rematchInterval: 60000
  matchCooldown: 10000
`
}

/**
 * The HTTP API's settings (see startServer's `http`), as deepstream reads them: CORS and the
 * body limit in `httpServer.options`, the rest in the `type: http` endpoint's options.
 */
function httpServerOptions (h = {}) {
  let text = ''
  if (h.allowAllOrigins !== undefined) text += `    allowAllOrigins: ${h.allowAllOrigins}\n`
  if (h.origins) text += `    origins:\n${h.origins.map((o) => `      - '${o}'\n`).join('')}`
  if (h.hostUrl !== undefined) text += `    hostUrl: '${h.hostUrl}'\n`
  if (h.maxMessageSize !== undefined) text += `    maxMessageSize: ${h.maxMessageSize}\n`
  return text
}

function httpEndpointOptions (h = {}) {
  const o = { allowAuthData: true, postPath: '/api', getPath: '/api', ...h.endpoint }
  return Object.entries(o).map(([k, v]) => `      ${k}: ${v}\n`).join('')
}

// In-memory deepstream (no storage section), auth none, binary + JSON websocket endpoints.
function deepstreamConfig (security = false, listen = {}, h = undefined) {
  return `serverName: interop
showLogo: false
logLevel: INFO
dependencyInitializationTimeout: 5000
exitOnFatalError: false
telemetry:
  type: deepstreamIO
  options:
    enabled: false
enabledFeatures:
  record: true
  event: true
  rpc: true
  presence: true
${listenConfig(listen)}httpServer:
  type: default
  options:
    healthCheckPath: /health-check
${httpServerOptions({ allowAllOrigins: true, maxMessageSize: 1048576, ...h })}connectionEndpoints:
${endpoint('ws-binary', '/deepstream')}${endpoint('ws-json', '/deepstream-json')}  - type: http
    options:
${httpEndpointOptions(h)}      logInvalidAuthData: false
      requestTimeout: 20000
logger:
  type: default
  options:
    colors: false
${security ? securityConfig() : `auth:
  - type: none
permission:
  type: config
  options:
    permissions: fileLoad(permissions.yml)
    maxRuleIterations: 3
    cacheEvacuationInterval: 60000
`}monitoring:
  type: none
`
}

/**
 * Starts the target server. Options:
 *   target   'deepstream' | 'recordsync' | 'sharedb-peer' (default: INTEROP_TARGET; the
 *            ShareDB reference server is started only by tools/sharedb-target.mjs)
 *   dataDir  recordsync data dir (default: a fresh temp dir)
 *   port     fixed port (default: a free ephemeral one)
 *   security { permissions, users }: paths of a permissions.yml and a users.yml; the server
 *            then uses file auth and those Valve permissions (both targets read the same
 *            files, through a deepstream-style config.yml)
 *   listen   { shuffleProviders }: deepstream's `listen` settings, given to both targets
 *            (through the same config.yml section)
 *   http     the HTTP API's settings, given to both targets through the same config.yml
 *            sections: { allowAllOrigins, origins, hostUrl, maxMessageSize } (httpServer.options) and
 *            { endpoint: { enableAuthEndpoint, authPath, postPath, getPath, allowAuthData } }
 *            (the `type: http` endpoint's options); { origin }: the Origin header the
 *            start-up health check sends (needed when allowAllOrigins is false), and the
 *            Host header it sends when hostUrl is set
 */
export async function startServer (opts = {}) {
  const target = opts.target || TARGET
  const workDir = mkdtempSync(join(tmpdir(), `interop-${target}-`))
  const logFile = join(workDir, 'server.log')
  const port = opts.port || await freePort()
  let dataDir = opts.dataDir
  let command
  let args
  let cwd = workDir

  const security = opts.security
  if (security) {
    writeFileSync(join(workDir, 'permissions.yml'), readFileSync(security.permissions))
    writeFileSync(join(workDir, 'users.yml'), readFileSync(security.users))
  }
  if (target === 'sharedb-peer') {
    // the reference ShareDB 7 server (in memory): ws://127.0.0.1:PORT/sharedb
    command = process.execPath
    args = [join(INTEROP_DIR, 'peers', 'sharedb-server.js'), String(port), '127.0.0.1']
  } else if (target === 'deepstream') {
    writeFileSync(join(workDir, 'config.yml'), deepstreamConfig(Boolean(security), opts.listen, opts.http))
    if (!security) writeFileSync(join(workDir, 'permissions.yml'), DEEPSTREAM_PERMISSIONS)
    const bin = join(INTEROP_DIR, 'node_modules', '@deepstream', 'server', 'dist', 'bin', 'deepstream')
    if (!existsSync(bin)) throw new Error(`deepstream server not installed at ${bin}: run interop/install.sh`)
    command = process.execPath
    args = [bin, 'start', '-c', join(workDir, 'config.yml'), '--host', '127.0.0.1', '--port', String(port)]
  } else {
    const bin = process.env.RECORDSYNC_BIN || join(REPO_DIR, 'target', 'debug', 'recordsync')
    if (!existsSync(bin)) throw new Error(`recordsync binary not found at ${bin}: build it (cargo build) or set RECORDSYNC_BIN`)
    if (!dataDir) {
      dataDir = join(workDir, 'data')
      mkdirSync(dataDir)
    }
    command = bin
    args = ['serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, ...(opts.extraArgs || [])]
    // RECORDSYNC_STORAGE (a PostgreSQL URL, say): the storage to serve from instead of the
    // embedded store in dataDir (run.sh's sharedb-recordsync-postgres target).
    if (process.env.RECORDSYNC_STORAGE) args.push('--storage', process.env.RECORDSYNC_STORAGE)
    if (security || opts.listen || opts.http) {
      const config = (security ? securityConfig() : '') + (opts.listen ? listenConfig(opts.listen) : '') +
        (opts.http
          ? `httpServer:\n  options:\n${httpServerOptions(opts.http)}connectionEndpoints:\n  - type: http\n    options:\n${httpEndpointOptions(opts.http)}`
          : '')
      writeFileSync(join(workDir, 'config.yml'), config)
      args.push('--config', join(workDir, 'config.yml'))
    }
  }

  const handle = {
    target,
    port,
    dataDir,
    workDir,
    logFile,
    url: `ws://127.0.0.1:${port}/deepstream`,
    jsonUrl: `ws://127.0.0.1:${port}/deepstream-json`,
    sharedbUrl: `ws://127.0.0.1:${port}/sharedb`,
    httpUrl: `http://127.0.0.1:${port}`,
    child: null,
    exited: null,
    logTail: (n) => logTail(logFile, n),

    async launch () {
      const fd = openSync(logFile, 'a')
      writeFileSync(fd, `\n=== ${new Date().toISOString()} ${command} ${args.join(' ')}\n`)
      const child = spawn(command, args, { cwd, stdio: ['ignore', fd, fd], env: { ...process.env, NO_COLOR: '1' } })
      closeSync(fd)
      this.child = child
      this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })))
      let exitInfo = null
      this.exited.then((info) => { exitInfo = info })
      const deadline = Date.now() + STARTUP_TIMEOUT_MS
      while (Date.now() < deadline) {
        if (exitInfo) break
        if (await healthCheck(port, startupHeaders(opts.http))) return this
        await sleep(100)
      }
      const why = exitInfo ? `exited early (${JSON.stringify(exitInfo)})` : `no 200 from /health-check within ${STARTUP_TIMEOUT_MS} ms`
      if (!exitInfo) { child.kill('SIGKILL'); await this.exited }
      const msg = `${target} server on port ${port} ${why}\n--- tail of ${logFile} ---\n${logTail(logFile)}`
      console.error(msg)
      throw new Error(msg)
    },

    /** SIGTERM, then wait for exit (SIGKILL after a grace period). */
    async stop () {
      const child = this.child
      if (!child || child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      await this.exited
      clearTimeout(t)
    },

    /** SIGKILL: the process gets no chance to flush anything. */
    async kill () {
      const child = this.child
      if (!child || child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await this.exited
    },

    /** Stops (if running) and starts again on the same port with the same data dir. */
    async restart () {
      await this.stop()
      return this.launch()
    }
  }

  await handle.launch()

  // Mutation check only (tools/mutations.mjs): route the clients through a fault-injecting proxy.
  if (process.env.INTEROP_MUTATE) {
    const { startMutatingProxy } = await import('../tools/mutations.mjs')
    const proxy = await startMutatingProxy(process.env.INTEROP_MUTATE, `ws://127.0.0.1:${port}`)
    handle.url = proxy.url('/deepstream')
    handle.jsonUrl = proxy.url('/deepstream-json')
  }
  return handle
}
