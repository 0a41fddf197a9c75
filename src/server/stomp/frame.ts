// STOMP frames as values: what the parser produces and the server writes,
// with header escaping per version (1.0: none; 1.1: \\ \n \c; 1.2: also \r).
// CONNECT and CONNECTED frames are never escaped (the spec's exception).

/** A STOMP version this server speaks. */
export type StompVersion = '1.0' | '1.1' | '1.2';

/** Highest first: CONNECT's accept-version picks the first one both sides speak. */
export const STOMP_VERSIONS: readonly StompVersion[] = ['1.2', '1.1', '1.0'];

/** One frame from a client. Headers keep the first value of a repeated name (1.2: "only the first SHOULD be used"). */
export interface StompFrame {
  command: string;
  headers: Map<string, string>;
  body: Uint8Array;
}

/** Headers of an outgoing frame, in order. */
export type HeaderList = ReadonlyArray<readonly [string, string]>;

/** Thrown by unescape on a sequence the spec leaves undefined (a fatal protocol error). */
export class EscapeError extends Error {}

/** Escapes a header name or value for `version` (1.0: as is). */
export function escapeHeader(s: string, version: StompVersion): string {
  if (version === '1.0' || !/[\\\n:\r]/.test(s)) return s;
  let out = s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\c');
  if (version === '1.2') out = out.replace(/\r/g, '\\r');
  return out;
}

/** Undoes escapeHeader; throws EscapeError on `\` followed by anything but the defined letters. */
export function unescapeHeader(s: string, version: StompVersion): string {
  if (version === '1.0' || !s.includes('\\')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = s[++i];
    if (n === '\\') out += '\\';
    else if (n === 'n') out += '\n';
    else if (n === 'c') out += ':';
    else if (n === 'r' && version === '1.2') out += '\r';
    else throw new EscapeError(`undefined escape sequence \\${n ?? ''} in a header (STOMP ${version} defines \\\\, \\n, \\c${version === '1.2' ? ', \\r' : ''})`);
  }
  return out;
}

/** Frames whose headers are never escaped. */
function escaped(command: string): boolean {
  return command !== 'CONNECT' && command !== 'CONNECTED';
}

/**
 * Writes a frame: `command`, headers, a blank line, the body, NUL. A body
 * gets a content-length header (bytes); a text body stays a string (for a
 * text WebSocket message), a binary one makes the frame a Buffer.
 */
export function encodeFrame(command: string, headers: HeaderList, body: string | Uint8Array, version: StompVersion): string | Buffer {
  const esc = escaped(command);
  let head = command + '\n';
  for (const [k, v] of headers) head += (esc ? escapeHeader(k, version) : k) + ':' + (esc ? escapeHeader(v, version) : v) + '\n';
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  if (length > 0) head += `content-length:${length}\n`;
  if (typeof body === 'string') return head + '\n' + body + '\0';
  return Buffer.concat([Buffer.from(head + '\n'), body, Buffer.from([0])]);
}
