// Token refresh over STOMP. STOMP 1.2 has no frame to re-authenticate, so a
// client SENDs its new token to the reserved destination /tickfan/token (in
// a passcode header, as in CONNECT); the RECEIPT says whether it was taken.

import { ErrorCode, TickfanError } from '../../protocol/index.js';
import type { StompContext } from './context.js';
import { TOKEN_DESTINATION } from './destinations.js';
import type { StompFrame } from './frame.js';

/** The token of an `Authorization: Bearer <token>` header ('' for anything else). */
export function bearer(header: string | undefined): string {
  const m = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  return m ? m[1]!.trim() : '';
}

/**
 * SEND to /tickfan/token with `passcode:<new token>` (or `Authorization:
 * Bearer <token>`) and a `receipt` header. Accepted: RECEIPT with
 * `tickfan-code:0` and `tickfan-expires` (ms since 1970, empty for none);
 * subscriptions the new grants do not cover end the connection with an ERROR
 * (PERMISSION_DENIED naming one of them) — STOMP cannot end one subscription
 * alone. Refused: RECEIPT with `tickfan-code:21` and a `message`, and the
 * connection carries on with its old token until that one's exp.
 */
export function refreshToken(ctx: StompContext, f: StompFrame): void {
  const h = f.headers;
  const receipt = h.get('receipt');
  if (receipt === undefined) {
    throw new TickfanError(ErrorCode.BAD_REQUEST, `a SEND to ${TOKEN_DESTINATION} needs a receipt header: its RECEIPT says whether the new token was accepted`);
  }
  const token = h.get('passcode') || bearer(h.get('Authorization') ?? h.get('authorization'));
  if (!token) throw new TickfanError(ErrorCode.BAD_REQUEST, `a SEND to ${TOKEN_DESTINATION} carries the new token in a passcode header (or Authorization: Bearer <token>)`);
  const { sessions } = ctx.node;
  sessions.refresh(ctx.session, token, (err) => {
    if (err) {
      sessions.count(err);
      ctx.receiptInOrder(receipt, [['tickfan-code', String(err.errorCode)], ['message', err.message.replace(/[\r\n]+/g, ' ')]]);
    } else {
      const at = ctx.session.grants?.expiresAt;
      ctx.receiptInOrder(receipt, [['tickfan-code', '0'], ['tickfan-expires', at == null ? '' : String(at)]]);
    }
  });
}
