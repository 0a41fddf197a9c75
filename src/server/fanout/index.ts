// Fan-out, from accepted publishes to sockets: the folder's public face.
export { Fanout, type FanoutOptions } from './fanout.js';
export { Conn, type TopicSub, type ClientSub } from './state.js';
export { realClock, type Clock, type TimerHandle } from './clock.js';
export { MAX_FRAME_BYTES } from './outbox.js';
export { viewReq, type ViewReq } from './views.js';
