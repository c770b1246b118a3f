// Checks the one list of error codes, pkg/src/codes.js, against every place a code lives:
// the core's (the match in `Error::code()`, src/error.rs) and the WIT `error-code` enum
// (wit/tls.wit) hold exactly its `core` codes; the JS reports only listed codes (every
// `new TlsError('…'` in pkg/index.js, pkg/node.js and pkg/src/**/*.js, and the literals passed to a
// function that forwards its argument as the code, such as `asTlsError(err, 'aborted')`)
// and every listed code is reported somewhere; the TlsErrorCode union in pkg/index.d.ts
// names exactly the list; and pkg/README.md's table is the list (`--write` rewrites it).
//
// Run from anywhere: node tests/types/check-codes.mjs [--write] [PROJECT_ROOT]. Exits 1 on
// any difference.

import { readdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const write = args.includes('--write');
const root = args.find((a) => a !== '--write') || fileURLToPath(new URL('../../', import.meta.url));
const problems = [];

// ---- the core: `pub fn code(&self)` in src/error.rs ----

function rustCodes() {
  const text = readFileSync(join(root, 'src/error.rs'), 'utf8');
  const start = text.search(/pub fn code\(&self\)/);
  if (start < 0) {
    problems.push('src/error.rs: no `pub fn code(&self)`');
    return new Map();
  }
  // The function ends at the first line that closes it at its own indentation.
  const indent = /\n([ \t]*)[^\n]*$/.exec(text.slice(0, start))[1];
  const end = text.indexOf(`\n${indent}}`, start);
  const body = text.slice(start, end < 0 ? undefined : end);
  const codes = new Map();
  for (const m of body.matchAll(/=>\s*"([^"]+)"/g)) codes.set(m[1], ['src/error.rs (Error::code)']);
  if (codes.size === 0) problems.push('src/error.rs: no codes found in Error::code()');
  return codes;
}

// ---- the JS: pkg/index.js and pkg/src/**/*.js ----

function jsFiles() {
  const files = [];
  for (const entry of ['pkg/index.js', 'pkg/node.js']) {
    const path = join(root, entry);
    if (existsSync(path)) files.push(path);
  }
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.m?js$/.test(entry.name)) files.push(path);
    }
  };
  walk(join(root, 'pkg/src'));
  return files;
}

/** The source without comments (string and template contents are kept as they are). */
function stripComments(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      // Keep the line breaks, so that line numbers still hold.
      out += text.slice(i, end < 0 ? text.length : end + 2).replace(/[^\n]/g, ' ');
      i = end < 0 ? text.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function lineOf(text, index) {
  return text.slice(0, index).split('\n').length;
}

/** The top-level arguments of the call whose '(' is at `open`, as source text. */
function callArguments(text, open) {
  const args = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      i = j;
    } else if (c === '(' || c === '[' || c === '{') {
      depth++;
    } else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) {
        const last = text.slice(start, i).trim();
        if (last !== '' || args.length > 0) args.push(last);
        return args;
      }
    } else if (c === ',' && depth === 1) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  return args;
}

const LITERAL = /^(['"`])([^'"`$\\]*)\1$/;

function jsCodes() {
  const sources = jsFiles().map((path) => ({ path, name: relative(root, path), text: stripComments(readFileSync(path, 'utf8')) }));
  const codes = new Map();
  const add = (code, where) => {
    if (!codes.has(code)) codes.set(code, []);
    codes.get(code).push(where);
  };
  for (const { name, text } of sources) {
    for (const m of text.matchAll(/new\s+TlsError\s*\(/g)) {
      const open = m.index + m[0].length - 1;
      const where = `${name}:${lineOf(text, m.index)}`;
      const first = callArguments(text, open)[0] || '';
      const literal = LITERAL.exec(first);
      if (literal) {
        add(literal[2], where);
      } else if (/^[A-Za-z_$][\w$]*$/.test(first)) {
        forwarded(sources, name, text, m.index, first, where, add);
      } else {
        problems.push(`${where}: new TlsError(${first}, …): the code is neither a string literal nor a parameter`);
      }
    }
  }
  return codes;
}

/**
 * `new TlsError(param, …)` inside `function f(…, param = 'default', …)`: the codes are the
 * default and the literal passed in that position at every call of f.
 */
function forwarded(sources, name, text, at, param, where, add) {
  let fn = null;
  for (const m of text.slice(0, at).matchAll(/(?:function\s+([A-Za-z_$][\w$]*)|^\s*(?:static\s+|async\s+)*([A-Za-z_$][\w$]*))\s*\(([^()]*)\)\s*\{/gm)) {
    if (/^(?:if|for|while|switch|catch|with|return)$/.test(m[1] || m[2])) continue;
    const params = m[3].split(',').map((p) => p.trim());
    const index = params.findIndex((p) => p === param || p.startsWith(`${param} `) || p.startsWith(`${param}=`));
    fn = index < 0 ? null : { name: m[1] || m[2], params, index, at: m.index + m[0].indexOf(m[1] || m[2]) };
  }
  if (!fn) {
    problems.push(`${where}: new TlsError(${param}, …): '${param}' is not a parameter of the enclosing function`);
    return;
  }
  const fallback = /=\s*(['"`])([^'"`]*)\1$/.exec(fn.params[fn.index]);
  if (fallback) add(fallback[2], `${where} (the default of ${fn.name}'s ${param})`);
  const call = new RegExp(`(?<![\\w$])${fn.name.replace(/\$/g, '\\$')}\\s*\\(`, 'g');
  for (const source of sources) {
    for (const m of source.text.matchAll(call)) {
      if (source.name === name && m.index === fn.at) continue; // the definition
      const args = callArguments(source.text, m.index + m[0].length - 1);
      const callWhere = `${source.name}:${lineOf(source.text, m.index)}`;
      if (args.length <= fn.index) {
        if (!fallback) problems.push(`${callWhere}: ${fn.name}() without a code, and '${param}' has no default`);
        continue;
      }
      const literal = LITERAL.exec(args[fn.index]);
      if (literal) add(literal[2], callWhere);
      else problems.push(`${callWhere}: ${fn.name}(…, ${args[fn.index]}): the code is not a string literal`);
    }
  }
}

// ---- the declaration: `export type TlsErrorCode = …;` in pkg/index.d.ts ----

function declaredCodes() {
  const text = stripComments(readFileSync(join(root, 'pkg/index.d.ts'), 'utf8'));
  const m = /export\s+type\s+TlsErrorCode\s*=([^;]*);/.exec(text);
  if (!m) {
    problems.push('pkg/index.d.ts: no `export type TlsErrorCode = …;`');
    return new Set();
  }
  const codes = new Set();
  for (const part of m[1].split('|')) {
    const literal = LITERAL.exec(part.trim());
    if (literal) codes.add(literal[2]);
    else if (part.trim() !== '') problems.push(`pkg/index.d.ts: TlsErrorCode has a member that is not a string literal: ${part.trim()}`);
  }
  return codes;
}

const { ERROR_CODES } = await import(pathToFileURL(join(root, 'pkg/src/codes.js')).href);
const listed = new Set(Object.keys(ERROR_CODES));
const rust = rustCodes();
const produced = new Map([...rust]);
for (const [code, where] of jsCodes()) produced.set(code, [...(produced.get(code) || []), ...where]);
const declared = declaredCodes();

for (const [code, where] of produced) {
  if (!listed.has(code)) problems.push(`'${code}' is reported (${where.join(', ')}) but missing from pkg/src/codes.js`);
}
for (const code of listed) {
  if (!produced.has(code)) problems.push(`'${code}' is in pkg/src/codes.js, but nothing reports it`);
  if (!declared.has(code)) problems.push(`'${code}' is in pkg/src/codes.js but missing from TlsErrorCode in pkg/index.d.ts`);
}
for (const code of declared) {
  if (!listed.has(code)) problems.push(`'${code}' is in TlsErrorCode in pkg/index.d.ts, but not in pkg/src/codes.js`);
}

// The core's codes: Rust and WIT hold exactly the list's `core` entries.
const core = new Set(Object.entries(ERROR_CODES).filter(([, [origin]]) => origin === 'core').map(([code]) => code));
for (const code of core) if (!rust.has(code)) problems.push(`'${code}' is a core code in pkg/src/codes.js but not in Error::code() (src/error.rs)`);
for (const code of rust.keys()) if (!core.has(code)) problems.push(`'${code}' is in Error::code() (src/error.rs) but not a core code in pkg/src/codes.js`);
const wit = stripComments(readFileSync(join(root, 'wit/tls.wit'), 'utf8').replace(/\/\/\/[^\n]*/g, ''));
const witEnum = /enum\s+error-code\s*\{([^}]*)\}/.exec(wit);
if (!witEnum) {
  problems.push('wit/tls.wit: no `enum error-code`');
} else {
  const cases = new Set(witEnum[1].split(',').map((c) => c.trim()).filter(Boolean));
  for (const code of core) if (!cases.has(code)) problems.push(`'${code}' is a core code but not a case of error-code in wit/tls.wit`);
  for (const code of cases) if (!core.has(code)) problems.push(`'${code}' is a case of error-code in wit/tls.wit but not a core code in pkg/src/codes.js`);
}

// The README's table, made from the list.
const BEGIN = '<!-- error-codes:begin (made by tests/types/check-codes.mjs --write) -->';
const END = '<!-- error-codes:end -->';
const escape = (text) => text.replace(/\|/g, '\\|');
const table = [
  BEGIN,
  '| code | what happened | what to do |',
  '|---|---|---|',
  ...Object.entries(ERROR_CODES).map(([code, [, meaning, action]]) => `| \`${code}\` | ${escape(meaning)} | ${escape(action)} |`),
  END,
].join('\n');
const readmePath = join(root, 'pkg/README.md');
const readme = readFileSync(readmePath, 'utf8');
const at = readme.indexOf(BEGIN);
const end = readme.indexOf(END);
if (at < 0 || end < at) {
  problems.push(`pkg/README.md: no table between "${BEGIN}" and "${END}"`);
} else if (readme.slice(at, end + END.length) !== table) {
  if (write) writeFileSync(readmePath, readme.slice(0, at) + table + readme.slice(end + END.length));
  else problems.push('pkg/README.md: the error-code table differs from pkg/src/codes.js (run node tests/types/check-codes.mjs --write)');
}

if (problems.length > 0) {
  for (const p of problems) console.error(`check-codes: ${p}`);
  process.exit(1);
}
console.log(`check-codes: ${listed.size} codes, one list (pkg/src/codes.js), in Rust, WIT, index.d.ts, README and the package's code`);
