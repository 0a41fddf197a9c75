// Asking an origin for exact images: one request on `<prefix>.img.<shard>`
// with the names and patterns wanted, answered by several replies (each
// within NATS' max_payload) and an empty one last. Without that last one the
// answer is incomplete and the request failed.

import { ErrorCode, TickfanError } from '../protocol/index.js';
import type { TopicImage } from '../server/replication.js';
import { encodeJson, readImages, type ImageRequest } from './messages.js';
import type { NatsLink } from './nats-link.js';
import type { Subjects } from './subjects.js';

export const IMAGE_TIMEOUT_MS = 5_000;

/** The images of shard `shard`'s topics matching `patterns`; null when no origin holds that shard now. */
export async function fetchImages(link: NatsLink, subjects: Subjects, shard: number, patterns: string[]): Promise<TopicImage[] | null> {
  const out: TopicImage[] = [];
  let complete = false;
  try {
    const replies = await link.nc.requestMany(subjects.images(shard), encodeJson({ patterns } satisfies ImageRequest), { strategy: 'sentinel', maxWait: IMAGE_TIMEOUT_MS });
    for await (const m of replies) {
      if (m.data.byteLength === 0) {
        complete = true;
        break;
      }
      out.push(...readImages(m.data));
    }
  } catch (err) {
    if ((err as Error)?.name === 'NoRespondersError' || (err as { cause?: Error })?.cause?.name === 'NoRespondersError') return null;
    throw err;
  }
  if (!complete) throw new TickfanError(ErrorCode.REQUEST_TIMEOUT, `the origin of shard ${shard} did not finish its image answer within ${IMAGE_TIMEOUT_MS} ms`);
  return out;
}
