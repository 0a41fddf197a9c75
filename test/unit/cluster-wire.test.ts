// The pure parts of the cluster (issue 11): the shard hash every node must
// compute alike (FNV-1a 32 test vectors), the subjects, and the JSON messages
// between nodes, which must carry every field value exactly.

import { describe, expect, it } from 'vitest';
import { fnv1a32, parseShard, shardOf } from '../../src/cluster/shard.js';
import { errorReply, imageFromJson, imageToJson, publishRequest, readImages, readPublishReply, readPublishRequest } from '../../src/cluster/messages.js';
import { Subjects } from '../../src/cluster/subjects.js';
import { ErrorCode, TickfanError, type Changes } from '../../src/protocol/index.js';
import type { TopicImage } from '../../src/server/replication.js';

const awkward: Changes = new Map<string, import('../../src/protocol/index.js').FieldValue | null>([
  ['f', 0.1 + 0.2],
  ['big', 2n ** 62n + 3n],
  ['neg', -(2n ** 63n)],
  ['nan', NaN],
  ['inf', -Infinity],
  ['negzero', -0],
  ['bytes', new Uint8Array([0, 255, 7])],
  ['s', 'é"\\\n'],
  ['b', false],
  ['__proto__', 1],
  ['gone', null],
]);

describe('shards', () => {
  it('FNV-1a 32 of the UTF-8 name, as published test vectors say', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    expect(fnv1a32('é')).not.toBe(fnv1a32('e'));
  });

  it('shardOf is 1-based, stable, and spreads topics evenly', () => {
    expect(shardOf('px.AAPL', 1)).toBe(1);
    expect(shardOf('px.AAPL', 3)).toBe((0x32de136f % 3) + 1);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 10_000; i++) counts[shardOf(`px.S${i}`, 4) - 1]!++;
    for (const c of counts) expect(c).toBeGreaterThan(2_250);
    expect(parseShard('2/3')).toEqual({ index: 2, of: 3 });
  });

  it('subjects: tickfan names and patterns are NATS subjects under the prefix', () => {
    const s = new Subjects('acme.md');
    expect(s.update('px.*')).toBe('acme.md.u.px.*');
    expect(s.topicOf(s.update('book.BTC-USD'))).toBe('book.BTC-USD');
    expect([s.publish(2), s.images(2), s.origins, s.layout, s.leaseBucket]).toEqual(['acme.md.pub.2', 'acme.md.img.2', 'acme.md.origins', 'acme.md.layout', 'acme_md_shards']);
  });
});

describe('messages between nodes', () => {
  it('a forwarded publish carries every value exactly', () => {
    const back = readPublishRequest(publishRequest('px.X', awkward));
    expect(back.topic).toBe('px.X');
    expect([...back.changes.keys()]).toEqual([...awkward.keys()]);
    for (const [k, v] of awkward) expect(Object.is(back.changes.get(k), v) || back.changes.get(k) === v || (v instanceof Uint8Array && [...(back.changes.get(k) as Uint8Array)].join() === [...v].join()), k).toBe(true);
  });

  it("an origin's refusal comes back as the same typed error", () => {
    const reply = errorReply(new TickfanError(ErrorCode.TOO_MANY_FIELDS, 'px.X would hold more than 4 fields'));
    expect(() => readPublishReply(reply)).toThrow(expect.objectContaining({ errorCode: ErrorCode.TOO_MANY_FIELDS, message: 'px.X would hold more than 4 fields' }));
    expect(() => readPublishReply(errorReply(new Error('boom')))).toThrow(expect.objectContaining({ errorCode: ErrorCode.INTERNAL }));
    expect(readPublishReply(new TextEncoder().encode('{"epoch":5,"version":7}'))).toEqual({ epoch: 5, version: 7 });
  });

  it('an image survives JSON exactly', () => {
    const state = [...awkward].filter(([, v]) => v !== null) as TopicImage['state'];
    const img: TopicImage = { name: 'px.X', id: 7, fieldNames: ['', 'f', 'big'], epoch: 1_700_000_000_000_123, version: 42, ts: 1_700_000_000_000, stale: true, state };
    const [back] = readImages(new TextEncoder().encode(JSON.stringify({ images: [imageToJson(img)] })));
    expect(back).toEqual({ ...img, state: expect.any(Array) });
    expect(back!.state.length).toBe(state.length);
    for (const [i, [k, v]] of state.entries()) {
      const [k2, v2] = back!.state[i]!;
      expect(k2).toBe(k);
      if (v instanceof Uint8Array) expect([...(v2 as Uint8Array)]).toEqual([...v]);
      else expect(Object.is(v2, v), k).toBe(true);
    }
    expect(imageFromJson(imageToJson(img)).epoch).toBe(img.epoch);
  });
});
