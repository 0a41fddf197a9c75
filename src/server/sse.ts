// Server-Sent Events transport for browsers without WebSocket (GET /sse).
// Registered by app.ts; see the README's "Browsers" section.

import type { UWS } from './uws.js';
import type { AppHooks, NodeContext } from './app.js';

export function registerSse(_app: UWS.TemplatedApp, _ctx: NodeContext, _hooks: AppHooks): void {
  // Filled in by the SSE work (issue 5).
}
