// Building the page from data without ever parsing it as markup: every text goes in as a
// text node (or an attribute set through the DOM), so record names and values, which are
// user data, are shown as they are and can never become elements or scripts.

/** An element with `attrs` (properties such as className, or data-* / aria-* attributes)
 * and `children` (nodes, or strings put in as text). */
export function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
    else if (key.includes('-')) node.setAttribute(key, String(value))
    else node[key] = value
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined).map(
    (c) => (c instanceof Node ? c : document.createTextNode(String(c)))))
  return node
}

/** Replaces what `node` holds with `children`. */
export function fill (node, ...children) {
  node.replaceChildren()
  node.append(...children.flat().filter((c) => c !== null && c !== undefined).map(
    (c) => (c instanceof Node ? c : document.createTextNode(String(c)))))
}

export const $ = (selector) => document.querySelector(selector)

/**
 * Indents JSON text for reading, token by token, without parsing it: numbers stay as the
 * server sent them (JSON.parse would round 12345678901234567890 and turn 1.50 into 1.5).
 */
export function indentJson (text) {
  let out = ''
  let depth = 0
  let inString = false
  const newline = () => '\n' + '  '.repeat(depth)
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      out += c
      if (c === '\\') out += text[++i] ?? ''
      else if (c === '"') inString = false
      continue
    }
    if (c === '"') { inString = true; out += c } else if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']'
      let j = i + 1
      while (/\s/.test(text[j] ?? '')) j++
      if (text[j] === close) { out += c + close; i = j; continue }
      depth++
      out += c + newline()
    } else if (c === '}' || c === ']') { depth--; out += newline() + c } else if (c === ',') out += ',' + newline()
    else if (c === ':') out += ': '
    else if (!/\s/.test(c)) out += c
  }
  return out
}
