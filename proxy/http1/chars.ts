/**
 * Byte-class lookup tables for the HTTP/1.1 codec. One `Uint8Array(256)` per class so the hot
 * loops are a single indexed load per byte instead of a regex or a chain of comparisons.
 */

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}

const isAlnum = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/** RFC 9110 §5.6.2 tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
export const TOKEN = table((c) => isAlnum(c) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)));

/**
 * RFC 9110 §5.5 field-vchar / SP / HTAB / obs-text: everything except the CTLs (0x00-0x1F minus
 * HTAB, and DEL). Rejecting NUL, CR and LF here is what closes header-injection and
 * request-smuggling tricks that rely on parsers disagreeing about them.
 */
export const FIELD_VALUE = table((c) => c === 0x09 || (c >= 0x20 && c !== 0x7f));

/**
 * Request-target bytes: visible US-ASCII only (RFC 3986 never allows raw CTLs, SP or non-ASCII;
 * RFC 9112 §3.2 requires them percent-encoded). `#`, `\` etc. pass here and are judged by
 * normalize-path, which knows the target's form.
 */
export const TARGET = table((c) => c > 0x20 && c < 0x7f);

/** Characters allowed in a Host value: RFC 3986 reg-name / IP-literal / ":" port. */
export const HOST = table((c) => isAlnum(c) || "-._~%!$&'()*+,;=:[]".includes(String.fromCharCode(c)));

/** Hex digit value, or 255 for a non-hex byte. */
export const HEX_VALUE = (() => {
  const t = new Uint8Array(256).fill(255);
  for (let c = 0x30; c <= 0x39; c++) t[c] = c - 0x30;
  for (let c = 0x41; c <= 0x46; c++) t[c] = c - 0x41 + 10;
  for (let c = 0x61; c <= 0x66; c++) t[c] = c - 0x61 + 10;
  return t;
})();

/**
 * ASCII case-insensitive equality of `s` with an already lower-case literal, without allocating
 * (no `toLowerCase()` on the hot path). Only A-Z are folded, so e.g. '@' never matches '`'.
 */
export function equalsLower(s: string, lower: string): boolean {
  const n = lower.length;
  if (s.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const a = s.charCodeAt(i);
    const b = lower.charCodeAt(i);
    if (a === b) continue;
    // Only an upper-case letter may differ from its lower-case form.
    if (a < 0x41 || a > 0x5a || (a | 0x20) !== b) return false;
  }
  return true;
}
