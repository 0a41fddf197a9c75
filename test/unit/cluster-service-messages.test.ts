// The NATS form of requests forwarded between cluster nodes and of their
// answers (cluster/service-messages.ts): values survive exactly (int64,
// bytes, NaN, null, field order), a typed error comes back with its code and
// message, and anything garbled is a typed error, never a throw into NATS'
// callback or a hang.

import { describe, expect, it } from 'vitest';
import { encodeForwardedRequest, encodeOutcome, readForwardedRequest, readOutcome } from '../../src/cluster/service-messages.js';
import { ErrorCode, TickfanError } from '../../src/protocol/index.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('forwarded service requests and answers', () => {
  it('a request of fields round-trips exactly, in field order', () => {
    const fields = new Map<string, unknown>([
      ['zeta', 1.5],
      ['10', 'ten'],
      ['big', 2n ** 62n + 1n],
      ['nan', Number.NaN],
      ['gone', null],
      ['raw', new Uint8Array([0, 255, 7])],
      ['yes', true],
    ]) as never;
    const back = readForwardedRequest(encodeForwardedRequest({ service: 'orders.submit', who: 'desk-7', timeoutMs: 2_000, payload: { fields, data: null } }));
    expect(back.service).toBe('orders.submit');
    expect(back.who).toBe('desk-7');
    expect(back.timeoutMs).toBe(2_000);
    expect(back.payload.data).toBeNull();
    expect([...back.payload.fields!]).toEqual([...(fields as Map<string, unknown>)]);
  });

  it('a request of bytes, and a reply of bytes with who answered', () => {
    const data = new Uint8Array([9, 8, 7]);
    expect(readForwardedRequest(encodeForwardedRequest({ service: 's.x', who: 'anonymous', timeoutMs: 1, payload: { fields: null, data } })).payload).toEqual({ fields: null, data });
    expect(readOutcome(encodeOutcome({ ok: true, responder: 'bot', payload: { fields: null, data } }))).toEqual({ ok: true, responder: 'bot', payload: { fields: null, data } });
  });

  it('a typed error comes back with its code and message', () => {
    const o = readOutcome(encodeOutcome({ ok: false, error: new TickfanError(ErrorCode.RESPONDER_FAILED, 'price outside the band') }));
    expect(o.ok).toBe(false);
    if (o.ok) return;
    expect(o.error).toBeInstanceOf(TickfanError);
    expect(o.error.errorCode).toBe(ErrorCode.RESPONDER_FAILED);
    expect(o.error.code).toBe('TICKFAN_ERR_RESPONDER_FAILED');
    expect(o.error.message).toBe('price outside the band');
  });

  it('a garbled request is BAD_REQUEST saying what is wrong', () => {
    for (const [raw, why] of [
      ['not json', /not valid JSON/],
      ['{"service":"a"}', /needs service, who and timeoutMs/],
      ['{"service":"a","who":"w","timeoutMs":5}', /payload of fields or bytes/],
      ['{"service":"a","who":"w","timeoutMs":5,"payload":{"fields":[[1,2]]}}', /\[name, value\] pairs/],
      ['{"service":"a","who":"w","timeoutMs":5,"payload":{"data":"AAAA"}}', /\$bytes/],
      ['null', /needs service/],
    ] as const) {
      let err: unknown;
      try {
        readForwardedRequest(bytes(raw));
      } catch (e) {
        err = e;
      }
      expect(err, raw).toBeInstanceOf(TickfanError);
      expect((err as TickfanError).errorCode, raw).toBe(ErrorCode.BAD_REQUEST);
      expect((err as TickfanError).message, raw).toMatch(why);
    }
  });

  it('a garbled answer is an INTERNAL outcome, not a throw', () => {
    for (const raw of ['', '{', '{"ok":"maybe"}', '{"ok":true,"payload":{"fields":"x"}}', 'null']) {
      const o = readOutcome(bytes(raw));
      expect(o.ok, raw).toBe(false);
      if (!o.ok) expect(o.error.errorCode, raw).toBe(ErrorCode.INTERNAL);
    }
  });
});
