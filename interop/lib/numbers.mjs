// Numbers for the number round-trip tests: random doubles from random bits (every exponent
// as likely as any other, so subnormals, huge and tiny values are common), the extremes,
// documents full of them, and a bit-for-bit comparison.

import assert from 'node:assert/strict'
import { randomFillSync } from 'node:crypto'

/** Doubles at the edges, as JavaScript holds them. */
export const EXTREMES = [
  3990.8571428571427, 0.1 + 0.2, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE,
  -Number.MIN_VALUE, 2.2250738585072014e-308, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2,
  -(2 ** 53 + 2), 2 ** 64, 1e21, 1e-7, 123e-20, 0.1, -2.5, 0
]

/** `n` random finite doubles. */
export function randomDoubles (n) {
  const out = []
  const bits = new Float64Array(1)
  const bytes = new Uint8Array(bits.buffer)
  while (out.length < n) {
    randomFillSync(bytes)
    if (Number.isFinite(bits[0])) out.push(bits[0])
  }
  return out
}

/**
 * A document of about `bytes` bytes of JSON: rows of random doubles under generated keys,
 * the extremes, and a nested part. Returns { value, count } (count: numbers in it).
 */
export function numberDocument (bytes) {
  const rows = []
  let size = 0
  let count = 0
  while (size < bytes) {
    const row = randomDoubles(32)
    rows.push(row)
    count += row.length
    size += JSON.stringify(row).length + 1
  }
  const nested = { extremes: [...EXTREMES], deep: { a: { b: randomDoubles(4) } } }
  count += EXTREMES.length + 4
  return { value: { rows, nested }, count }
}

/** Bitwise equality of two doubles (Object.is: tells 0 from -0, and NaN is itself). */
const sameDouble = (a, b) => Object.is(a, b)

/**
 * Asserts that `got` holds exactly the numbers of `want` (what JSON.stringify of `want`
 * reads back as: -0 is written as 0), bit for bit, at the same places. Returns how many
 * numbers were compared.
 */
export function assertSameNumbers (got, want, where = 'value') {
  const expected = JSON.parse(JSON.stringify(want))
  let compared = 0
  const walk = (g, e, path) => {
    if (typeof e === 'number') {
      assert.ok(typeof g === 'number' && sameDouble(g, e), `${where}${path}: got ${g}, wrote ${e}`)
      compared++
    } else if (Array.isArray(e)) {
      assert.ok(Array.isArray(g) && g.length === e.length, `${where}${path}: an array of ${e.length}`)
      e.forEach((item, i) => walk(g[i], item, `${path}[${i}]`))
    } else if (e !== null && typeof e === 'object') {
      assert.ok(g !== null && typeof g === 'object', `${where}${path}: an object`)
      assert.deepEqual(Object.keys(g), Object.keys(e), `${where}${path}: keys in order`)
      for (const k of Object.keys(e)) walk(g[k], e[k], `${path}.${k}`)
    } else {
      assert.deepEqual(g, e, `${where}${path}`)
    }
  }
  walk(got, expected, '')
  return compared
}
