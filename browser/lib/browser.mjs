// Debian's chromium, headless, driven by playwright-core: a fresh profile per browser and
// the flags that keep it from reaching for the network (this machine has none beyond the
// package registries; without them chromium keeps trying Google's hosts).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium'

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

/** A browser with an empty profile; close() ends it and removes the profile. */
export async function openBrowser () {
  const profile = mkdtempSync(join(tmpdir(), 'recordsync-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 860 }
  })
  return {
    context,
    async page () {
      const page = await context.newPage()
      page.on('dialog', (dialog) => dialog.accept()) // the console asks before a delete
      return page
    },
    async close () {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
}

/** Waits until the element at `selector` shows `text`; fails saying what it shows instead. */
export async function waitForText (page, selector, text, timeout = 10000) {
  try {
    await page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent.includes(t),
      [selector, text], { timeout })
  } catch (e) {
    const shown = await page.locator(selector).textContent().catch(() => '(no such element)')
    throw new Error(`${selector} did not show ${JSON.stringify(text)} within ${timeout} ms; it shows ${JSON.stringify(shown)}`)
  }
}
