// Request-reply: services, responders and requests; the folder's public face.
export { ServiceRouter, type ServiceGate, type ResponderLink, type Delivery, type Outcome, type ReplyOutcome, type RouterStats } from './router.js';
export { EMPTY_PAYLOAD, checkPayload } from './payload.js';
