// The web console (/console) in headless chromium against recordsync: what the CLI writes
// appears in it, what a deepstream client changes shows up live, its edits reach
// subscribed deepstream clients, a conflicting edit is reported with the current version,
// and with authentication configured it asks for credentials and shows only what the
// permission rules allow.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { startServer, INTEROP_DIR } from '../../interop/lib/server.mjs'
import { connect, waitFor } from '../../interop/lib/client.mjs'
import { openBrowser, waitForText } from '../lib/browser.mjs'
import { cliSet } from '../lib/cli.mjs'

let server
let browser
let ds

before(async () => {
  server = await startServer()
  browser = await openBrowser()
  ds = await connect(server)
})

after(async () => {
  ds?.close()
  await browser?.close()
  await server?.stop()
})

/** The console, open on a fresh page, its record list on `prefix`. */
async function consoleAt (srv, prefix) {
  const page = await browser.page()
  await page.goto(`${srv.httpUrl}/console/`)
  if (prefix !== undefined) {
    await page.fill('#prefix', prefix)
    await page.click('#list-form button')
  }
  return page
}

async function openRecord (page, name) {
  await page.fill('#open-name', name)
  await page.click('#open-form button')
  await waitForText(page, '#live', 'live')
}

test('a record written with the CLI appears in the console, numbers as written', async () => {
  await cliSet(server.port, 'books/1', '{"title":"Dune","price":12.50,"isbn":12345678901234567890}')
  await cliSet(server.port, 'books/2', '{"title":"Emma"}')
  await cliSet(server.port, 'films/1', '{"title":"Alien"}')
  const page = await consoleAt(server, 'books/')
  const names = await page.locator('#records a').evaluateAll((links) => links.map((a) => a.dataset.name))
  assert.deepEqual(names, ['books/1', 'books/2'])
  await page.click('#records a[data-name="books/1"]')
  await waitForText(page, '#record-value', '"Dune"')
  const shown = await page.locator('#record-value').textContent()
  assert.match(shown, /"price": 12\.50/)
  assert.match(shown, /"isbn": 12345678901234567890/)
  await waitForText(page, '#record-version', '1')
  // its history, and the value at a past version
  await cliSet(server.port, 'books/1', '{"title":"Dune","price":9.99}')
  await waitForText(page, '#record-value', '9.99')
  await waitForText(page, '#history tbody', 'update')
  // version 1 is the first value (version 0 is the record's create)
  await page.locator('#history tbody tr', { has: page.locator('td:first-child', { hasText: /^1$/ }) }).locator('button').click()
  await waitForText(page, '#past-value', '12.50')
  await waitForText(page, '#past-version', '1')
  if (process.env.CONSOLE_SCREENSHOT) {
    await page.waitForFunction(() => !document.querySelector('#overview-body').textContent.includes('…'), null, { timeout: 10000 })
    await page.screenshot({ path: process.env.CONSOLE_SCREENSHOT, fullPage: true })
  }
  await page.close()
})

test('names and values are shown as text, never as markup', async () => {
  const name = 'markup/<b id="bold">x</b>'
  const value = '{"html":"<img src=x onerror=\\"window.ran=1\\"><script>window.ran=2</script>"}'
  await cliSet(server.port, name, value)
  const page = await consoleAt(server, 'markup/')
  await waitForText(page, '#records', name)
  await page.click('#records a')
  await waitForText(page, '#record-value', '<script>window.ran=2</script>')
  await waitForText(page, '#record-name', name)
  await waitForText(page, '#history tbody', '<img src=x')
  assert.equal(await page.evaluate(() => window.ran), undefined, 'no script of the data ran')
  assert.equal(await page.locator('#bold, #record-value img, #history img').count(), 0, 'no element of the data exists')
  await page.close()
})

test('records are listed by prefix a page at a time', async () => {
  const names = Array.from({ length: 30 }, (_, i) => `many/${String(i).padStart(2, '0')}`)
  await Promise.all(names.map((name, i) => ds.record.setDataWithAck(name, { i })))
  await ds.record.setDataWithAck('manyother', { not: 'listed' })
  const page = await consoleAt(server, 'many/')
  const listed = () => page.locator('#records a').evaluateAll((links) => links.map((a) => a.dataset.name))
  await waitForText(page, '#records', 'many/24')
  assert.deepEqual(await listed(), names.slice(0, 25))
  await page.click('#more')
  await waitForText(page, '#records', 'many/29')
  assert.deepEqual(await listed(), names)
  assert.equal(await page.locator('#more').isVisible(), false, 'no page after the last')
  await page.close()
})

test('a change made with a deepstream client shows up live', async () => {
  await cliSet(server.port, 'live/1', '{"count":1}')
  const page = await consoleAt(server)
  await openRecord(page, 'live/1')
  await waitForText(page, '#record-value', '"count": 1')
  for (const n of [2, 3]) {
    ds.record.setData('live/1', 'count', n)
    await waitForText(page, '#record-value', `"count": ${n}`)
  }
  await waitForText(page, '#record-version', '3')
  // a delete too, and the record coming back
  const record = ds.record.getRecord('live/1')
  await record.whenReady()
  await record.delete()
  await waitForText(page, '#record-value', 'no such record')
  await cliSet(server.port, 'live/1', '{"count":10}')
  await waitForText(page, '#record-value', '"count": 10')
  await page.close()
})

test('watching goes on across a restart of the server, from the last version seen', async () => {
  const own = await startServer()
  try {
    await cliSet(own.port, 'restart/1', '{"n":1}')
    const page = await consoleAt(own)
    await openRecord(page, 'restart/1')
    await waitForText(page, '#record-value', '"n": 1')
    await own.restart()
    await cliSet(own.port, 'restart/1', '{"n":2}')
    await waitForText(page, '#record-value', '"n": 2')
    await waitForText(page, '#live', 'live')
    await page.close()
  } finally {
    await own.stop()
  }
})

test('an edit in the console reaches a subscribed deepstream client; delete too', async () => {
  await cliSet(server.port, 'edit/1', '{"name":"Ada"}')
  const record = ds.record.getRecord('edit/1')
  await record.whenReady()
  const seen = []
  record.subscribe((value) => seen.push(value))
  const page = await consoleAt(server)
  await openRecord(page, 'edit/1')
  await waitForText(page, '#record-value', '"Ada"')
  await page.click('#edit')
  await page.fill('#editor-text', '{"name": "Ada Lovelace", "born": 1815}')
  await page.click('#save')
  await waitForText(page, '#message', 'Saved as version')
  await waitFor(() => seen.some((v) => v.name === 'Ada Lovelace' && v.born === 1815), 5000,
    () => `the client to see the edit; it saw ${JSON.stringify(seen)}`)
  await waitForText(page, '#record-value', '"Ada Lovelace"')

  await page.click('#delete')
  await waitForText(page, '#message', 'Deleted edit/1')
  await waitFor(async () => !(await ds.record.has('edit/1')), 5000, 'the record to be gone')
  record.discard()
  await page.close()
})

test('a conflicting edit is reported with the current version, and nothing is saved', async () => {
  await cliSet(server.port, 'clash/1', '{"v":"first"}')
  const page = await consoleAt(server)
  await openRecord(page, 'clash/1')
  await waitForText(page, '#record-value', '"first"')
  const base = Number(await page.locator('#record-version').textContent())
  await page.click('#edit')
  await waitForText(page, '#editor-base', String(base))
  // someone else writes first
  await ds.record.setDataWithAck('clash/1', { v: 'theirs' })
  await waitForText(page, '#record-value', '"theirs"')
  await page.fill('#editor-text', '{"v":"mine"}')
  await page.click('#save')
  await waitForText(page, '#message', 'Conflict')
  await waitForText(page, '#message', `you edited version ${base}, but the record is now at version ${base + 1}`)
  assert.deepEqual(await ds.record.snapshot('clash/1'), { v: 'theirs' })
  assert.equal(await page.locator('#editor').isVisible(), true, 'the edit is kept to try again')
  await page.close()
})

test('with authentication configured, it asks for credentials and shows what the rules allow', async () => {
  const fixtures = join(INTEROP_DIR, 'fixtures', 'permissions')
  const secured = await startServer({ security: { permissions: join(fixtures, 'permissions.yml'), users: join(fixtures, 'users.yml') } })
  try {
    const carol = { username: 'carol', password: 'password' }
    await cliSet(secured.port, 'admin/secret', '{"code":42}', carol)
    await cliSet(secured.port, 'admin/other', '{"code":43}', carol)
    await cliSet(secured.port, 'notes/1', '{"text":"hello"}', carol)

    const page = await consoleAt(secured)
    await page.locator('#login').waitFor({ state: 'visible' })
    assert.equal(await page.locator('#main').isVisible(), false, 'nothing shown before logging in')

    await page.fill('#username', 'alice')
    await page.fill('#password', 'wrong')
    await page.click('#login button')
    await waitForText(page, '#message', '401')
    assert.equal(await page.locator('#main').isVisible(), false)

    await page.fill('#password', 'password')
    await page.click('#login button')
    await page.locator('#main').waitFor({ state: 'visible' })
    await waitForText(page, '#who', 'alice')
    // alice is no admin: admin/* is not listed for her, and refused when opened
    await waitForText(page, '#records', 'notes/1')
    const listed = await page.locator('#records a').evaluateAll((links) => links.map((a) => a.dataset.name))
    assert.deepEqual(listed, ['notes/1'])
    await page.fill('#open-name', 'admin/secret')
    await page.click('#open-form button')
    await waitForText(page, '#message', 'Refused by the permission rules (403)')
    assert.equal((await page.locator('#record-value').textContent()).includes('42'), false)
    // what she may read, she sees
    await openRecord(page, 'notes/1')
    await waitForText(page, '#record-value', '"hello"')
    await page.close()

    // carol, an admin, sees admin/*
    const admin = await consoleAt(secured)
    await admin.fill('#username', 'carol')
    await admin.fill('#password', 'password')
    await admin.click('#login button')
    await admin.fill('#prefix', 'admin/')
    await admin.click('#list-form button')
    await waitForText(admin, '#records', 'admin/secret')
    await admin.click('#records a[data-name="admin/secret"]')
    await waitForText(admin, '#record-value', '"code": 42')
    await admin.close()
  } finally {
    await secured.stop()
  }
})
