// Where a server is and what to reach it with: its WebSocket and SSE URLs
// from either one, and the runtime's WebSocket (the `ws` package in Node 20).

import type { WebSocketCtor } from './transport.js';

let wsModule: Promise<WebSocketCtor> | undefined;

/** The global WebSocket, or in Node the `ws` package; rejects where there is none. */
export async function defaultWebSocket(): Promise<WebSocketCtor> {
  const g = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (g) return g;
  // Node 20 has no global WebSocket: use the `ws` package (a tickfan dependency).
  // A browser without one (or where it was removed) gets SSE instead.
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  if (!node) throw new Error('this runtime has no WebSocket');
  wsModule ??= import(/* @vite-ignore */ 'ws' as string).then((m: { default: WebSocketCtor }) => m.default);
  return wsModule;
}

/** The WebSocket and SSE endpoints of a server, from either URL. */
export function endpoints(url: string, sseUrl?: string): { ws: string; sse: string } {
  const u = new URL(url);
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  const ws = new URL(u);
  ws.protocol = secure ? 'wss:' : 'ws:';
  const sse = new URL(u);
  sse.protocol = secure ? 'https:' : 'http:';
  if (u.protocol.startsWith('http')) ws.pathname = ws.pathname.replace(/\/sse\/?$/, '/ws');
  else sse.pathname = /\/ws\/?$/.test(sse.pathname) ? sse.pathname.replace(/\/ws\/?$/, '/sse') : sse.pathname.replace(/\/?$/, '/sse');
  return { ws: ws.toString(), sse: sseUrl ?? sse.toString() };
}
