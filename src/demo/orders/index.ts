// The demo order service (issue 20): orders by request-reply, each order's
// latest state as a row of its desk's blotter topic; the folder's public face.
export { OrderService, type OrderServiceOptions, type OrderServiceStats } from './order-service.js';
export { BlotterMirror, type PublishBatchFn } from './blotter-mirror.js';
export { rowOf } from './blotter-row.js';
export { BookTops, type Top, type TopOfBook } from './book-tops.js';
export { OrderMatcher, type MatcherOptions } from './order-matcher.js';
export { INSTRUMENTS, parseSubmit, parseCancel, priceOf, qtyOf, type Instrument, type OrderRequest } from './order-validation.js';
export { OrderRejected, RejectReason, ORDERS_TABLE, blotterTopic, type Order, type OrderState, type Side, type Fill, type RowPosition } from './order-types.js';
