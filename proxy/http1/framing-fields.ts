/**
 * The fields of a head that decide its framing and the connection's fate (RFC 9112 §6.1, §6.3,
 * §9.6): Content-Length, Transfer-Encoding and Connection, kept as received until the head is
 * complete. The request parser and the response parser note them with the same code, so they
 * cannot disagree on which field names count.
 *
 * Hot path (once per field line): the holder is one object per parser, cleared per message, and a
 * field's name is matched by its length first — no allocation unless the field is one of the three.
 */
import { equalsLower } from './chars.js';

export class FramingFields {
  /** Every Content-Length field's value, in order (several mean a list to reconcile, or a conflict). */
  contentLength: string[] | undefined = undefined;
  transferEncoding: string[] | undefined = undefined;
  connection: string[] | undefined = undefined;
}

/** Keeps `value` when `name` is one of the framing fields; false for any other field. */
export function noteFramingField(f: FramingFields, name: string, value: string): boolean {
  switch (name.length) {
    case 10:
      if (!equalsLower(name, 'connection')) return false;
      (f.connection ??= []).push(value);
      return true;
    case 14:
      if (!equalsLower(name, 'content-length')) return false;
      (f.contentLength ??= []).push(value);
      return true;
    case 17:
      if (!equalsLower(name, 'transfer-encoding')) return false;
      (f.transferEncoding ??= []).push(value);
      return true;
    default:
      return false;
  }
}

export function clearFramingFields(f: FramingFields): void {
  f.contentLength = undefined;
  f.transferEncoding = undefined;
  f.connection = undefined;
}
