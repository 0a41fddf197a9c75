// The demo market feed used by `tickfan serve --demo`: flat quotes (px.*, fx.*)
// and keyed market-by-price books (book.*), and the book simulator `tickfan bench book` reuses;
// the demo order service (orders/: orders by request-reply, desks' blotters); and the
// demo-only desk token issuer (desk-tokens.ts) for a desk page that refreshes its token.
export { MarketSim, demoSymbols, rng, type MarketSimOptions, type Publish, type PublishBatch } from './market-sim.js';
export { BookSim, DEMO_BOOKS, BOOK_TABLES, type BookBatch, type BookRowOp, type BookSpec, type BookSide, type LevelFields } from './book-sim.js';
export { OrderService, INSTRUMENTS, RejectReason, ORDERS_TABLE, blotterTopic, rowOf, type OrderServiceOptions, type OrderState, type RowPosition } from './orders/index.js';
export { DeskTokenIssuer, deskGrants, startDeskTokens, type DeskTokenIssuerOptions } from './desk-tokens.js';
