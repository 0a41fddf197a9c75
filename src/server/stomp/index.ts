// STOMP 1.2 (and 1.1, 1.0) over WebSocket at /stomp: existing messaging
// clients read topics, publish and make requests through the same admission,
// sessions, dispatch and fan-out as native connections. This folder's public face.

import type { NodeParts } from '../node-parts.js';
import { StompHeartbeats } from './heartbeat.js';
import { registerStompRoute } from './route.js';

export { STOMP_PATH, STOMP_SUBPROTOCOLS } from './route.js';

/** Adds the /stomp WebSocket route to the node's app. */
export function registerStomp(node: NodeParts): void {
  registerStompRoute(node, new StompHeartbeats(node.opts.heartbeatMs));
}
