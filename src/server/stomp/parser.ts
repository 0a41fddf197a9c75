// An incremental STOMP frame parser: bytes in, in any split (a WebSocket
// message may hold half a frame, several frames, or heart-beat EOLs between
// them), frames out. Bounded: a frame past its limits is an error, never a buffer that grows.

import { EscapeError, unescapeHeader, type StompFrame, type StompVersion } from './frame.js';

export interface ParserLimits {
  /** Largest frame, command to NUL (the `maxPayloadBytes` option). */
  maxFrameBytes: number;
  /** Most header lines in one frame. */
  maxHeaders: number;
  /** Largest command line plus headers, blank line included. */
  maxHeaderBytes: number;
}

export interface ParserEvents {
  frame(f: StompFrame): void;
  /** An EOL between frames: a client heart-beat. */
  heartbeat(): void;
}

/** A violation of the frame syntax or of a limit; the connection is to get an ERROR frame and be closed. */
export class StompSyntaxError extends Error {}

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
/** A buffer this large is let go once it holds no partial frame. */
const KEEP_BYTES = 64 * 1024;

const Phase = { Between: 0, Command: 1, Headers: 2, Body: 3 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

export class StompParser {
  /** Header escaping: null until CONNECT negotiated a version (CONNECT itself is never escaped). */
  version: StompVersion | null = null;
  private buf = Buffer.alloc(4096);
  private len = 0;
  /** Where the unconsumed bytes start. */
  private start = 0;
  /** Bytes before this were searched already (each byte is searched once). */
  private scan = 0;
  private phase: Phase = Phase.Between;
  private frameStart = 0;
  private lineStart = 0;
  private bodyStart = 0;
  private contentLength = -1;
  private command = '';
  private headers = new Map<string, string>();
  private headerCount = 0;
  private dead = false;

  constructor(
    private readonly limits: ParserLimits,
    private readonly events: ParserEvents,
  ) {}

  /** Takes the next bytes; throws StompSyntaxError (and takes nothing more) on a bad frame. */
  feed(chunk: Uint8Array): void {
    if (this.dead) return;
    this.append(chunk);
    try {
      this.run();
    } catch (err) {
      this.dead = true;
      if (err instanceof EscapeError) throw new StompSyntaxError(err.message);
      throw err;
    }
  }

  /** Parses nothing more (the connection is closing). */
  stop(): void {
    this.dead = true;
  }

  private append(chunk: Uint8Array): void {
    if (this.start > 0) {
      // Keep only the unconsumed tail, at the front (once per chunk, not per frame).
      const shift = this.start;
      if (shift === this.len && this.buf.length > KEEP_BYTES) this.buf = Buffer.alloc(4096);
      else this.buf.copy(this.buf, 0, shift, this.len);
      this.len -= shift;
      this.start = 0;
      this.scan -= shift;
      this.frameStart -= shift;
      this.lineStart -= shift;
      this.bodyStart -= shift;
    }
    if (this.len + chunk.byteLength > this.buf.length) {
      const grown = Buffer.alloc(Math.max(this.buf.length * 2, this.len + chunk.byteLength));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.byteLength;
  }

  /** First index of `byte` in [from, len), or -1. */
  private find(byte: number, from: number): number {
    const i = this.buf.indexOf(byte, from);
    return i >= 0 && i < this.len ? i : -1;
  }

  private run(): void {
    while (!this.dead) {
      if (this.phase === Phase.Between) {
        if (!this.skipEols()) return;
        this.frameStart = this.lineStart = this.scan = this.start;
        this.phase = Phase.Command;
      } else if (this.phase === Phase.Body) {
        if (!this.body()) return;
      } else if (!this.line()) return;
    }
  }

  /** Heart-beats (EOLs) before a frame; false when the bytes ran out first. */
  private skipEols(): boolean {
    const { buf } = this;
    while (this.start < this.len) {
      const b = buf[this.start]!;
      if (b === LF) {
        this.start++;
        this.events.heartbeat();
      } else if (b === CR) {
        if (this.start + 1 >= this.len) return false;
        if (buf[this.start + 1] !== LF) throw new StompSyntaxError('a carriage return between frames must be followed by a line feed');
        this.start += 2;
        this.events.heartbeat();
      } else return true;
    }
    return false;
  }

  /** One command or header line; false when it is not complete yet. */
  private line(): boolean {
    const nl = this.find(LF, this.scan);
    const { maxHeaderBytes } = this.limits;
    if (nl < 0) {
      this.scan = this.len;
      if (this.len - this.frameStart > maxHeaderBytes) throw new StompSyntaxError(`the command and headers of a frame take more than ${maxHeaderBytes} bytes (or the blank line after the headers is missing)`);
      return false;
    }
    if (nl - this.frameStart > maxHeaderBytes) throw new StompSyntaxError(`the command and headers of a frame take more than ${maxHeaderBytes} bytes`);
    let end = nl;
    if (end > this.lineStart && this.buf[end - 1] === CR) end--;
    const text = this.buf.toString('utf8', this.lineStart, end);
    this.lineStart = this.scan = nl + 1;
    if (this.phase === Phase.Command) this.commandLine(text);
    else if (text === '') this.endOfHeaders();
    else this.headerLine(text);
    return true;
  }

  private commandLine(text: string): void {
    if (!/^[A-Z]{1,32}$/.test(text)) throw new StompSyntaxError(`${JSON.stringify(text.slice(0, 40))} is not a STOMP command (expected CONNECT, SUBSCRIBE, SEND, …)`);
    this.command = text;
    this.headers = new Map();
    this.headerCount = 0;
    this.contentLength = -1;
    this.phase = Phase.Headers;
  }

  private headerLine(text: string): void {
    if (++this.headerCount > this.limits.maxHeaders) throw new StompSyntaxError(`a ${this.command} frame has more than ${this.limits.maxHeaders} headers`);
    const colon = text.indexOf(':');
    if (colon <= 0) throw new StompSyntaxError(`${JSON.stringify(text.slice(0, 40))} is not a header line (expected name:value)`);
    // CONNECT is never escaped; other frames by the negotiated version (the spec's exception).
    const v = this.command === 'CONNECT' || this.command === 'STOMP' ? null : this.version;
    const name = v ? unescapeHeader(text.slice(0, colon), v) : text.slice(0, colon);
    const value = v ? unescapeHeader(text.slice(colon + 1), v) : text.slice(colon + 1);
    if (!this.headers.has(name)) this.headers.set(name, value);
  }

  private endOfHeaders(): void {
    const cl = this.headers.get('content-length');
    if (cl !== undefined) {
      if (!/^\d{1,15}$/.test(cl)) throw new StompSyntaxError(`content-length must be a number of bytes, not ${JSON.stringify(cl.slice(0, 20))}`);
      this.contentLength = Number(cl);
      if (this.contentLength > this.limits.maxFrameBytes) throw new StompSyntaxError(`a body of ${this.contentLength} bytes is larger than the ${this.limits.maxFrameBytes} accepted`);
    }
    this.bodyStart = this.scan = this.lineStart;
    this.phase = Phase.Body;
  }

  /** The body and its NUL; false when they have not all arrived. */
  private body(): boolean {
    const max = this.limits.maxFrameBytes;
    let end: number;
    if (this.contentLength >= 0) {
      end = this.bodyStart + this.contentLength;
      if (end + 1 - this.frameStart > max) throw new StompSyntaxError(`a frame of ${end + 1 - this.frameStart} bytes is larger than the ${max} accepted`);
      if (this.len <= end) return false;
      if (this.buf[end] !== NUL) throw new StompSyntaxError(`the body is longer than its content-length (${this.contentLength}): a NUL must follow it`);
    } else {
      end = this.find(NUL, this.scan);
      if (end < 0) {
        this.scan = this.len;
        if (this.len - this.frameStart > max) throw new StompSyntaxError(`a frame is larger than the ${max} bytes accepted (or its NUL terminator is missing)`);
        return false;
      }
      if (end + 1 - this.frameStart > max) throw new StompSyntaxError(`a frame of ${end + 1 - this.frameStart} bytes is larger than the ${max} accepted`);
    }
    // A copy: the buffer is reused for the next bytes.
    const body = Uint8Array.prototype.slice.call(this.buf, this.bodyStart, end);
    this.start = this.scan = end + 1;
    this.phase = Phase.Between;
    this.events.frame({ command: this.command, headers: this.headers, body });
    return true;
  }
}
