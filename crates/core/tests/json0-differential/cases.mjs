// The oracle for recordsync_core::json0: seeded random documents and json0 ops, run
// through the npm `ot-json0` package, written as JSON lines with what ot-json0 answered.
//
//     node cases.mjs [--seed N] [--count N] [--tp1] [--plain]
//
// Each line is one case:
//
//     {"case":7,"doc":…,"a":…,"b":…,"c":…,"wild":…,"single":…,"expect":{"apply_a":R,…}}
//
// `a` and `b` are ops made on `doc` (so both apply to it: a concurrent pair), `c` is made
// on the document after `a` (so `a` then `c` is a sequence), `wild` is an op of arbitrary
// components that may or may not apply to `doc`, `single` is a component on its own (for
// normalize, sometimes without `p`). Each R is one of
//
//     {"ok": value}        ot-json0 returned this (a document or an op), as JSON
//     {"error": message}   ot-json0 threw
//     {"js_only": why}     ot-json0 did something only JavaScript can hold or see,
//                          which recordsync refuses (the rules are below, at "the
//                          oracle"); the Rust side must return an error
//
// The same seed always gives the same lines. `--tp1` prints, instead of cases, how often
// ot-json0 itself fails to converge on the generated pairs (for the report in the docs).
//
// Generation follows ot-json0's own test generator in spirit (test/json0-generator.coffee:
// each component is made on the document as the op so far left it), written anew, with
// strings full of characters outside the BMP (two UTF-16 code units each) and numbers in
// every spelling JavaScript writes; `wild` ops add components that do not fit the
// document, or could never apply anywhere (`li` at a key, `oi` at an index). What it never
// makes: keys such as `__proto__` or `length`, keys that are array indexes (JavaScript
// orders those first in an object, recordsync keeps the order written), string offsets
// between the two halves of a surrogate pair (though transform may move one there), and
// string ops on lists (the published 1.1.0 turns the list into a string).

import json0Module from 'ot-json0'
import text0 from 'ot-json0/lib/text0.js'

const json0 = json0Module.type

// ---- the oracle: ot-json0 1.1.0, held to the rules recordsync documents ----
//
// Where ot-json0 does something JSON cannot carry, recordsync refuses at the point it
// happens (src/json0/mod.rs, "Where recordsync refuses what ot-json0 does"). So the
// oracle refuses there too, with an error whose message starts with `js_only:` (written
// as {"js_only": ...}):
//
// - text0 (and so si/sd) applies only to strings, as ot-json0's current source checks
//   (the published 1.1.0 turns a list into a string instead), and refuses to leave half
//   a character (a lone surrogate) in the string, also where transform applies it to
//   what an `ld` or `od` carries;
// - apply refuses a component that leaves something JSON cannot carry — a list with a
//   hole, a number that is not finite, half a character (a lone surrogate) in a string —
//   even if a later component of the op removes it; and a path that runs through a string
//   (ot-json0 reads its characters, and drops what it writes there), also where transform
//   applies a component to what an `ld` or `od` carries;
// - transform refuses when either side of ot-json0's transformX holds something JSON
//   cannot carry, even the side it then drops (recordsync computes both, as ot-json0
//   does), and when it computes a list index from a key that is none (NaN, which JSON
//   writes as null) or merges two `na` beyond the double range, even if that component
//   is dropped later;
// - apply (and transform's use of it) makes the checks of ot-json0's current source: a
//   list takes a number, an object a string.

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

json0.registerSubtype({
  ...text0,
  apply (snapshot, op) {
    if (typeof snapshot !== 'string') throw new Error('text0 operations cannot be applied to type: ' + typeof snapshot)
    const edited = text0.apply(snapshot, op)
    if (LONE_SURROGATE.test(edited)) throw new Error('js_only: half a character')
    return edited
  }
})

/**
 * The checks ot-json0's current source makes as its apply walks a path, which the
 * published 1.1.0 lacks: a list takes a number, an object a string.
 */
function checkSteps (data, c) {
  const steps = c.si != null || c.sd != null ? c.p.slice(0, -1) : c.p
  let elem = { data }
  let key = 'data'
  for (const step of steps) {
    if (elem === null || elem === undefined) return // ot-json0 throws here itself
    elem = elem[key]
    key = step
    if (Array.isArray(elem) && typeof key !== 'number') throw new Error('List index must be a number')
    if (isObject(elem) && typeof key !== 'string') throw new Error('Object key must be a string')
  }
}

/** Whether component `c`'s path runs through a string (or number or boolean) in `data`. */
function throughScalar (data, c) {
  const steps = c.si != null || c.sd != null ? c.p.slice(0, -1) : c.p
  let here = data
  for (const step of steps.slice(0, -1)) {
    if (here === null || here === undefined) return false // ot-json0 throws here itself
    if (typeof here !== 'object') return true
    here = here[step]
  }
  return here !== null && here !== undefined && typeof here !== 'object' && steps.length > 0
}

// ot-json0's apply with its current source's checks, one component at a time (which is
// how ot-json0 applies an op). Installed on the type, so that transform's own use of
// apply (to update what an `ld` or `od` deletes) makes the checks too.
const publishedApply = json0.apply
json0.apply = function (snapshot, op) {
  let data = snapshot
  for (const c of op) {
    checkSteps(data, c)
    const through = throughScalar(data, c)
    data = publishedApply(data, [c])
    if (through) throw new Error('js_only: a path through a string')
  }
  return data
}

/** ot-json0's apply, one component at a time, refusing what JSON cannot carry. */
function apply (doc, op) {
  let data = doc
  for (const c of op) {
    data = json0.apply(data, [c])
    // (No document between components is fine: a later `oi` at the root may follow.)
    const why = data === undefined ? null : jsOnly(data)
    if (why) throw new Error(`js_only: ${why}`)
  }
  return data
}

// Every component transformComponent makes passes through the type's `append`: watch for
// list indexes computed from keys there, before JSON copies turn NaN into null.
const publishedAppend = json0.append
let computedBadStep = null
json0.append = function (dest, c) {
  computedBadStep = computedBadStep || badComponents([c])
  const result = publishedAppend(dest, c)
  computedBadStep = computedBadStep || badComponents(dest.slice(-1))
  return result
}

/** ot-json0's transform, refusing when either side of its transformX cannot be carried. */
function transform (op, other, side) {
  computedBadStep = null
  const result = json0.transform(clone(op), clone(other), side)
  if (other.length > 0 && !(op.length === 1 && other.length === 1)) {
    const [left, right] = side === 'left' ? json0.transformX(clone(op), clone(other)) : json0.transformX(clone(other), clone(op))
    const why = jsOnly(left) || jsOnly(right) || badComponents(left) || badComponents(right)
    if (why) throw new Error(`js_only: ${why} (in transformX)`)
  }
  const why = badComponents(result) || computedBadStep
  if (why) throw new Error(`js_only: ${why}`)
  return result
}

const isIndex = (n) => Number.isInteger(n) && n >= 0

/**
 * Why an op's paths, `lm` or `na` are not what a component can hold: ot-json0 computes a
 * list index from a key as NaN (written as null), or as a fraction or below 0, on ops
 * that do not apply to one document, and merges two `na` into one beyond the double range.
 */
function badComponents (op) {
  for (const c of op) {
    if (!c.p.every((step) => typeof step === 'string' || isIndex(step))) return 'a path step JavaScript computed from a key'
    if ('lm' in c && !isIndex(c.lm)) return 'a list move JavaScript computed from a key'
    if ('na' in c && !Number.isFinite(c.na)) return 'a number that is not finite'
  }
  return null
}

// ---- arguments ----

const args = process.argv.slice(2)
const arg = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}
const SEED = Number(arg('--seed', '1'))
const COUNT = Number(arg('--count', '1000'))
const TP1 = args.includes('--tp1')
// Only the shapes ot-json0's own generator makes: no `oi` over a key that is there, one
// string form (si/sd or text0) per case, `lm` within the list, small whole numbers.
const PLAIN = args.includes('--plain')
let textForm = 'si'

// ---- seeded randomness (mulberry32) ----

let state = SEED >>> 0
function random () {
  state = (state + 0x6d2b79f5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const int = (n) => Math.floor(random() * n)
const pick = (items) => items[int(items.length)]
const chance = (p) => random() < p

// ---- values ----

const KEYS = ['a', 'b', 'c', 'k', 'x', 'y', 'foo', 'bar', 'name', 'émoji', '😀', 'a b']
const WORDS = ['', 'a', 'hi', 'xyz', 'é', '😀', 'a😀b', '𝄞𝄞', '👩‍👩‍👧', 'tea ☕ time', 'line\nbreak']
const NUMBERS = [
  0, 1, 2, 3, 7, 42, -1, -5, 0.5, 0.1, 0.2, 2.5, -0.25, 1e21, 1e-7, 123e-20,
  9007199254740991, 2 ** 53 + 2, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324,
  3990.8571428571427
]
// What `na` adds: mostly small whole numbers, sometimes the awkward ones.
const ADDENDS = [1, 2, 3, 5, -1, -2, -3, 0, 0.1, 0.2, -0.1, 1e21, 1e308, 0.5, 2 ** 53]

function randomNumber () {
  return PLAIN || chance(0.7) ? int(50) - 10 : pick(NUMBERS)
}

function randomThing (depth = 0) {
  switch (int(depth > 2 ? 4 : 6)) {
    case 0: return null
    case 1: return pick(WORDS)
    case 2: return randomNumber()
    case 3: return chance(0.5)
    case 4: {
      const obj = {}
      for (let i = int(4); i > 0; i--) obj[newKey(obj)] = randomThing(depth + 1)
      return obj
    }
    default: {
      const list = []
      for (let i = int(4); i > 0; i--) list.push(randomThing(depth + 1))
      return list
    }
  }
}

function randomDoc () {
  // Mostly objects, as records are; sometimes another root, which json0 allows.
  if (chance(0.85)) {
    const obj = {}
    for (let i = 1 + int(5); i > 0; i--) obj[newKey(obj)] = randomThing(1)
    return obj
  }
  return pick([() => pick(WORDS), () => randomNumber(), () => [randomThing(1), randomThing(1)]])()
}

function newKey (obj) {
  for (let tries = 0; tries < 8; tries++) {
    const key = pick(KEYS)
    if (!Object.prototype.hasOwnProperty.call(obj, key)) return key
  }
  let key = pick(KEYS)
  while (Object.prototype.hasOwnProperty.call(obj, key)) key += pick(['a', 'z', '_'])
  return key
}

const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)))
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Offsets into `s` (in UTF-16 code units) that do not split a surrogate pair. */
function boundaries (s) {
  const out = [0]
  let at = 0
  for (const ch of s) {
    at += ch.length
    out.push(at)
  }
  return out
}

// ---- ops made on a document (each component applies to what the ones before left) ----

/** A random path to something in `doc`, descending through objects and lists only. */
function randomPath (doc) {
  const path = []
  let here = doc
  while (chance(0.6)) {
    if (Array.isArray(here) && here.length > 0) {
      const i = int(here.length)
      path.push(i)
      here = here[i]
    } else if (isObject(here) && Object.keys(here).length > 0) {
      const key = pick(Object.keys(here))
      path.push(key)
      here = here[key]
    } else break
  }
  return path
}

function at (doc, path) {
  let here = doc
  for (const p of path) here = here[p]
  return here
}

/**
 * One component that applies to `container.data`, applied to it in place. Returns the
 * component, or null if it picked something it cannot do there.
 */
function validComponent (container) {
  const path = randomPath(container.data)
  const operand = at(container.data, path)
  const parentPath = path.slice(0, -1)
  const parent = path.length ? at(container.data, parentPath) : null
  const key = path[path.length - 1]

  let c
  if (Array.isArray(parent) && chance(0.35)) {
    c = { p: path, lm: int(parent.length + (!PLAIN && chance(0.1) ? 2 : 0)) }
  } else if (chance(0.25) || operand === null || typeof operand === 'boolean') {
    const value = randomThing(1)
    if (path.length === 0) c = { p: [], od: clone(operand), oi: value }
    else if (Array.isArray(parent)) c = { p: path, ld: clone(operand), li: value }
    else c = { p: path, od: clone(operand), oi: value }
  } else if (typeof operand === 'string') {
    const offsets = boundaries(operand)
    const insert = chance(0.5) || operand.length === 0
    const from = insert ? pick(offsets) : pick(offsets.slice(0, -1))
    const sub = insert
      ? { p: from, i: pick(WORDS) || 'z' }
      : { p: from, d: operand.slice(from, pick(offsets.filter((o) => o > from).slice(0, 3))) }
    c = (PLAIN ? textForm === 'si' : chance(0.5))
      ? { p: path.concat([sub.p]), ...(insert ? { si: sub.i } : { sd: sub.d }) }
      : { p: path, t: 'text0', o: [sub] }
  } else if (typeof operand === 'number') {
    c = { p: path, na: PLAIN || chance(0.8) ? int(10) - 3 : pick(ADDENDS) }
  } else if (Array.isArray(operand)) {
    const i = int(operand.length + 1)
    if (chance(0.5) || operand.length === 0) c = { p: path.concat([i]), li: randomThing(1) }
    else c = { p: path.concat([int(operand.length)]), ld: null }
    if (c.ld === null) c.ld = clone(operand[c.p[c.p.length - 1]])
  } else {
    const keys = Object.keys(operand)
    if (chance(0.5) || keys.length === 0) {
      c = { p: path.concat([newKey(operand)]), oi: randomThing(1) }
    } else if (!PLAIN && chance(0.15)) {
      // oi on a key that is there, without od: replaces it, keeping its place
      const k = pick(keys)
      c = { p: path.concat([k]), oi: randomThing(1) }
    } else {
      const k = pick(keys)
      c = { p: path.concat([k]), od: clone(operand[k]) }
    }
  }
  let next
  try {
    next = json0.apply(clone(container.data), [clone(c)])
  } catch {
    return null
  }
  if (jsOnly(next)) return null
  container.data = next
  return c
}

/** An op of up to four components made on `doc` (each applies after the ones before). */
function validOp (doc) {
  const container = { data: clone(doc) }
  const op = []
  let p = 0.9
  while (chance(p) && container.data !== undefined) {
    p *= 0.6
    const c = validComponent(container)
    if (c) op.push(c)
  }
  return op
}

// ---- wild components: right types for their fields, anywhere ----

function wildComponent (doc) {
  const path = randomPath(doc)
  const here = at(doc, path)
  const index = () => int((Array.isArray(here) ? here.length : 3) + 2)
  const keyHere = () => (isObject(here) && chance(0.6) && Object.keys(here).length
    ? pick(Object.keys(here))
    : pick(KEYS))
  switch (int(13)) {
    case 0: return { p: path.concat([keyHere()]), oi: randomThing(1) }
    case 1: return { p: path.concat([keyHere()]), od: randomThing(1) }
    case 2: return { p: path.concat([keyHere()]), od: randomThing(1), oi: randomThing(1) }
    case 3: return { p: path.concat([index()]), li: randomThing(1) }
    case 4: return { p: path.concat([index()]), ld: randomThing(1) }
    case 5: return { p: path.concat([index()]), ld: randomThing(1), li: randomThing(1) }
    case 6: return { p: path.concat([index()]), lm: index() }
    case 7: return { p: chance(0.5) ? path : path.concat([keyHere()]), na: pick(ADDENDS) }
    case 8:
    case 9: {
      if (Array.isArray(here)) return { p: path, na: 1 } // text0 on a list: see the top
      const s = typeof here === 'string' ? here : 'abc'
      const offsets = boundaries(s)
      const offset = pick(offsets.concat([s.length + 2]))
      const text = chance(0.5) ? pick(WORDS) : s.slice(offset, pick(offsets.filter((o) => o >= offset).concat([offset])))
      const insert = chance(0.5)
      if (chance(0.5)) return { p: path.concat([offset]), ...(insert ? { si: text } : { sd: text }) }
      return { p: path, t: 'text0', o: [insert ? { p: offset, i: text } : { p: offset, d: text }] }
    }
    case 10: return { p: path.concat([pick(KEYS), pick(KEYS)]), oi: 1 } // through a missing key
    // Shapes that never apply, which ot-json0 still transforms: a list op at a key, an
    // object op at an index, a string op whose offset is a key.
    case 11: return pick([
      { p: path.concat([keyHere()]), li: randomThing(1) },
      { p: path.concat([keyHere()]), ld: randomThing(1) },
      { p: path.concat([keyHere()]), lm: index() },
      { p: path.concat([keyHere()]), ld: randomThing(1), li: randomThing(1) }
    ])
    default: return pick([
      { p: path.concat([index()]), oi: randomThing(1) },
      { p: path.concat([index()]), od: randomThing(1) },
      { p: path.concat([index()]), od: randomThing(1), oi: randomThing(1) },
      { p: path.concat([keyHere()]), si: pick(WORDS) },
      { p: path.concat([keyHere()]), sd: pick(WORDS) }
    ])
  }
}

function wildOp (doc) {
  const op = []
  for (let n = 1 + int(3); n > 0; n--) op.push(chance(0.5) ? wildComponent(doc) : validOp(doc)[0] || wildComponent(doc))
  return op
}

// ---- running ot-json0 ----


/** Why `value` cannot be carried by JSON as it is, or null if it can. */
function jsOnly (value) {
  if (value === undefined) return 'no document'
  if (typeof value === 'number') return Number.isFinite(value) ? null : 'a number that is not finite'
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? 'half a surrogate pair' : null
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value) || value[i] === undefined) return 'a list with a hole'
      const why = jsOnly(value[i])
      if (why) return why
    }
    return null
  }
  if (isObject(value)) {
    for (const key of Object.keys(value)) {
      if (LONE_SURROGATE.test(key)) return 'half a surrogate pair'
      if (value[key] === undefined) continue // JSON drops it, as ot-json0's users see
      const why = jsOnly(value[key])
      if (why) return why
    }
  }
  return null
}

/** Runs `f` on deep copies of `inputs` (ot-json0 changes some of what it is given). */
function run (f, ...inputs) {
  let out
  try {
    out = f(...inputs.map(clone))
  } catch (e) {
    // (Messages may quote half a character; JSON lines must be well-formed.)
    const message = String(e && e.message).toWellFormed()
    return message.startsWith('js_only: ') ? { js_only: message.slice(9) } : { error: message }
  }
  const why = jsOnly(out)
  return why ? { js_only: why } : { ok: JSON.parse(JSON.stringify(out)) }
}

const value = (r) => (r && 'ok' in r ? r.ok : undefined)

function makeCase (n) {
  textForm = chance(0.5) ? 'si' : 'text0'
  const doc = randomDoc()
  const a = validOp(doc)
  const b = validOp(doc)
  const afterA = value(run(apply, doc, a))
  const c = afterA === undefined ? [] : validOp(afterA)
  const wild = wildOp(doc)

  const expect = {}
  expect.apply_a = run(apply, doc, a)
  expect.apply_b = run(apply, doc, b)
  expect.left = run((x, y) => transform(x, y, 'left'), a, b)
  expect.right = run((x, y) => transform(x, y, 'right'), b, a)
  const afterB = value(expect.apply_b)
  if (afterA !== undefined && 'ok' in expect.right) expect.after_a_right = run(apply, afterA, expect.right.ok)
  if (afterB !== undefined && 'ok' in expect.left) expect.after_b_left = run(apply, afterB, expect.left.ok)
  expect.compose_ac = run(json0.compose, a, c)
  if ('ok' in expect.compose_ac) expect.apply_composed = run(apply, doc, expect.compose_ac.ok)
  expect.invert_a = run(json0.invert, a)
  expect.normalize_a = run(json0.normalize, a)
  // normalize's other forms: one component on its own, `p` left out when empty
  const single = a.length > 0 ? clone(a[0]) : { p: [], oi: 1 }
  if (single.p.length === 0 && chance(0.5)) delete single.p
  expect.normalize_single = run(json0.normalize, single)
  expect.apply_wild = run(apply, doc, wild)
  expect.transform_wild = run((x, y) => transform(x, y, 'left'), wild, a)
  return { case: n, doc, a, b, c, wild, single, expect }
}

/** JSON text with object keys sorted: equality regardless of key order. */
function canonical (v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`
  return JSON.stringify(v)
}

if (TP1) {
  // How often ot-json0 itself does not converge on these pairs.
  let pairs = 0
  let diverged = 0
  for (let n = 0; n < COUNT; n++) {
    const k = makeCase(n)
    const e = k.expect
    if ('ok' in (e.after_a_right || {}) && 'ok' in (e.after_b_left || {})) {
      pairs++
      if (canonical(e.after_a_right.ok) !== canonical(e.after_b_left.ok)) {
        diverged++
        if (diverged <= 5) console.log(JSON.stringify({ doc: k.doc, a: k.a, b: k.b, left: e.left.ok, right: e.right.ok }))
      }
    }
  }
  console.log(`${diverged} of ${pairs} pairs diverge`)
} else {
  const out = []
  for (let n = 0; n < COUNT; n++) {
    out.push(JSON.stringify(makeCase(n)))
    if (out.length === 1000) {
      process.stdout.write(out.join('\n') + '\n')
      out.length = 0
    }
  }
  if (out.length) process.stdout.write(out.join('\n') + '\n')
}
