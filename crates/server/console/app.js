// The console's page: log in when the server asks for credentials, the overview from the
// metrics, the record list by prefix a page at a time, and one open record: its value
// watched live, its history, an edit saved only onto the version it was based on, delete.

import { Api, ApiError } from './api.js'
import { $, el, fill, indentJson } from './dom.js'
import { overview, parsePrometheus } from './metrics.js'

const OVERVIEW_EVERY_MS = 2000
/** History entries shown: the newest, as many as one page of the API (its default). */
const HISTORY_PAGE = 100

let api
/** The open record: its name, the version and JSON text shown, the stream's controller. */
let open = null
let listing = { prefix: '', next: null }

/** Shows a refusal or a note; a refusal says the status and the server's own reason. */
function say (what, info = false) {
  const box = $('#message')
  if (what === null) { box.hidden = true; return }
  const text = what instanceof ApiError
    ? `${refusalTitle(what)}: ${what.message}`
    : what instanceof Error ? `Error: ${what.message}` : String(what)
  fill(box, text)
  box.className = info ? 'info' : ''
  box.hidden = false
}

function refusalTitle (e) {
  if (e.status === 401) return 'Not logged in (401)'
  if (e.status === 403) return 'Refused by the permission rules (403)'
  if (e.status === 404) return 'Not found (404)'
  if (e.status === 412) return 'Conflict (412)'
  return `Refused (${e.status} ${e.code})`
}

/** Runs a user action, showing what went wrong; a 401 asks for credentials again. */
async function attempt (action) {
  try {
    return await action()
  } catch (e) {
    if (e.name === 'AbortError') return
    if (e instanceof ApiError && e.status === 401) showLogin()
    say(e)
  }
}

function showLogin () {
  api.logout()
  $('#main').hidden = true
  $('#logout').hidden = true
  fill($('#who'))
  $('#login').hidden = false
  $('#username').focus()
}

async function start () {
  const res = await fetch('settings.json')
  api = new Api(await res.json())
  $('#login').addEventListener('submit', (e) => { e.preventDefault(); attempt(login) })
  $('#logout').addEventListener('click', () => { closeRecord(); showLogin(); say(null) })
  $('#list-form').addEventListener('submit', (e) => { e.preventDefault(); attempt(() => list($('#prefix').value)) })
  $('#more').addEventListener('click', () => attempt(() => list(listing.prefix, listing.next)))
  $('#open-form').addEventListener('submit', (e) => { e.preventDefault(); attempt(() => openRecord($('#open-name').value)) })
  $('#edit').addEventListener('click', startEdit)
  $('#cancel').addEventListener('click', () => { $('#editor').hidden = true })
  $('#editor').addEventListener('submit', (e) => { e.preventDefault(); attempt(save) })
  $('#delete').addEventListener('click', () => attempt(remove))
  await enter()
}

/** Shows the console if the server lets this browser in (open, or logged in already). */
async function enter () {
  try {
    await list('')
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { showLogin(); return }
    say(e)
  }
  $('#login').hidden = true
  $('#main').hidden = false
  $('#logout').hidden = !api.authorization
  refreshOverview()
}

async function login () {
  await api.login($('#username').value, $('#password').value)
  $('#password').value = ''
  fill($('#who'), `logged in as ${$('#username').value}`)
  say(null)
  await enter()
}

// ---- overview ----

let lastScrape = null
let overviewTimer = null

async function refreshOverview () {
  clearTimeout(overviewTimer)
  try {
    const text = await api.metrics()
    if (text === null) {
      fill($('#overview-body'), 'This server does not serve its metrics (metrics.enabled: false).')
      return
    }
    const samples = parsePrometheus(text)
    const now = performance.now()
    const o = overview(samples, lastScrape?.samples, lastScrape ? (now - lastScrape.at) / 1000 : 0)
    lastScrape = { samples, at: now }
    const stat = (value, label) => el('div', { className: 'stat' }, el('strong', {}, value), el('span', {}, label))
    const connections = [...o.connections].sort()
    fill($('#overview-body'), el('div', { className: 'stats' },
      stat(connections.reduce((a, [, n]) => a + n, 0), 'connections'),
      connections.map(([protocol, n]) => stat(n, `${protocol} connections`)),
      o.rates.map(([label, r]) => stat(r === null ? '…' : r.toFixed(1), label))))
  } catch (e) {
    fill($('#overview-body'), `The metrics could not be read: ${e.message}`)
  }
  overviewTimer = setTimeout(refreshOverview, OVERVIEW_EVERY_MS)
}

// ---- the record list ----

async function list (prefix, cursor = null) {
  const page = await api.list(prefix, cursor)
  if (!cursor) fill($('#records'))
  listing = { prefix, next: page.next }
  $('#records').append(...page.records.map((r) => el('li', {},
    el('a', { href: '#', 'data-name': r.name, onclick: (e) => { e.preventDefault(); attempt(() => openRecord(r.name)) } },
      el('span', {}, r.name), el('span', { className: 'version' }, `v${r.version}`)))))
  if (!cursor && page.records.length === 0) $('#records').append(el('li', {}, prefix ? `No records start with “${prefix}”.` : 'No records yet.'))
  $('#more').hidden = !page.next
}

// ---- one record ----

function closeRecord () {
  open?.stream.abort()
  open = null
  $('#record').hidden = true
}

async function openRecord (name) {
  closeRecord()
  say(null)
  const stream = new AbortController()
  open = { name, version: null, text: null, stream }
  for (const a of document.querySelectorAll('#records a')) a.toggleAttribute('aria-current', a.dataset.name === name)
  fill($('#record-name'), name)
  fill($('#record-version'), '…')
  fill($('#record-value'))
  $('#editor').hidden = true
  $('#past').hidden = true
  $('#record').hidden = false
  setLive(false)
  await loadHistory()
  watch(open)
}

const RETRY_MS = 1000

/**
 * Follows the open record's stream until another record is opened. When the stream ends or
 * the connection fails (the server restarted, say), it is resumed from the last version
 * seen; a refusal ends it.
 */
async function watch (record) {
  const onEvent = (event) => {
    if (open !== record) return
    setLive(true)
    record.version = event.version
    record.text = event.event === 'value' ? event.valueText : null
    fill($('#record-version'), event.version ?? 'none')
    fill($('#record-value'), record.text === null ? '(no such record: deleted, or never written)' : indentJson(record.text))
    loadHistory().catch(() => {})
  }
  while (open === record) {
    try {
      await api.watch(record.name, onEvent, record.stream.signal, record.version)
    } catch (e) {
      if (e.name === 'AbortError' || open !== record) return
      if (e instanceof ApiError) {
        say(e)
        if (e.status === 403) fill($('#record-value'), '(you may not read this record)')
        if (e.status === 401) showLogin()
        setLive(false)
        return
      }
      // a network error: try again below
    }
    if (open !== record) return
    setLive(false)
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
  }
}

function setLive (on) {
  fill($('#live'), on ? '● live' : '○ not watching')
  $('#live').className = on ? 'live' : 'live off'
}

/** The newest page of the open record's history (once its version is known). */
async function loadHistory () {
  const record = open
  const page = await api.history(record.name, Math.max(0, (record.version ?? 0) - HISTORY_PAGE + 1))
  if (open !== record) return
  fill($('#history tbody'), page.entries.slice().reverse().map((entry) => el('tr', {},
    el('td', {}, entry.version),
    el('td', {}, new Date(entry.time).toLocaleString()),
    el('td', {}, entry.author ?? ''),
    el('td', { className: 'op', title: JSON.stringify(entry.op) }, JSON.stringify(entry.op)),
    el('td', {}, entry.op.op === 'delete'
      ? ''
      : el('button', { type: 'button', onclick: () => attempt(() => showPast(record, entry.version)) }, 'value')))))
}

async function showPast (record, version) {
  const { text } = await api.read(record.name, version)
  if (open !== record) return
  fill($('#past-version'), version)
  fill($('#past-value'), indentJson(text))
  $('#past').hidden = false
}

function startEdit () {
  if (!open) return
  $('#editor-text').value = open.text === null ? '{}' : indentJson(open.text)
  open.base = open.text === null ? undefined : open.version
  fill($('#editor-base'), open.base ?? 'none (a new record)')
  $('#editor').hidden = false
  $('#editor-text').focus()
}

async function save () {
  const record = open
  const text = $('#editor-text').value
  try {
    JSON.parse(text)
  } catch (e) {
    say(`The value is not JSON: ${e.message}`)
    return
  }
  try {
    const { etag } = await api.put(record.name, text, record.base)
    $('#editor').hidden = true
    say(`Saved as version ${etag.replaceAll('"', '')}.`, true)
  } catch (e) {
    if (e instanceof ApiError && e.status === 412) {
      const now = e.body?.currentVersion
      say(`Conflict: you edited version ${record.base}, but the record is now at version ${now ?? 'none (deleted)'}. ` +
        'Nothing was saved. Look at the current value, then edit again.')
      return
    }
    throw e
  }
}

async function remove () {
  const record = open
  if (!record || record.text === null) return
  if (!confirm(`Delete ${record.name}?`)) return
  await api.remove(record.name, record.version)
  say(`Deleted ${record.name}.`, true)
  await list(listing.prefix)
}

start().catch(say)
