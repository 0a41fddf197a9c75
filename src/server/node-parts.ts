// The parts of one node that its routes (WebSocket, HTTP, SSE) are built
// from. Assembled once, by createNode (node.ts).

import type { TopicStore } from '../engine/index.js';
import type { Admission } from './admission.js';
import type { Authenticator } from './auth.js';
import type { Dispatch } from './dispatch.js';
import type { Fanout } from './fanout/index.js';
import type { Ingest } from './ingest.js';
import type { Metrics } from './metrics.js';
import type { ServerOptions } from './options.js';
import type { ServiceGate } from './services/index.js';
import type { Sessions } from './session.js';
import type { ServerStats } from './stats.js';
import type { UWS } from './uws.js';

export interface NodeParts {
  readonly opts: ServerOptions;
  readonly uws: typeof UWS;
  readonly app: UWS.TemplatedApp;
  readonly store: TopicStore;
  readonly fanout: Fanout;
  readonly stats: ServerStats;
  readonly ingest: Ingest;
  readonly auth: Authenticator;
  readonly metrics: Metrics;
  readonly admission: Admission;
  readonly sessions: Sessions;
  readonly dispatch: Dispatch;
  /** Request-reply: this node's way to the service router. */
  readonly services: ServiceGate;
  /** More fields for GET /healthz (a cluster node's). */
  readonly health?: (() => Record<string, unknown>) | undefined;
}
