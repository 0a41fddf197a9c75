// What a request or reply may carry: the same field values and limits as a
// publish (names, value types, sizes), or bytes no larger than a field value.

import type { TopicStore } from '../../engine/index.js';
import { ErrorCode, TickfanError, type Payload } from '../../protocol/index.js';

/** An empty field payload (what an error answer carries). */
export const EMPTY_PAYLOAD: Payload = { fields: new Map(), data: null };

/** Throws the TickfanError a publish of the same fields would get (BAD_FIELD, VALUE_TOO_LARGE…). */
export function checkPayload(store: TopicStore, service: string, p: Payload): void {
  if (p.data !== null) {
    if (p.data.byteLength > store.limits.maxValueBytes) throw new TickfanError(ErrorCode.VALUE_TOO_LARGE, `the payload is larger than ${store.limits.maxValueBytes} bytes`);
  } else if (p.fields.size > 0) store.validateChanges(service, p.fields);
}
