// What both sides of a keyed topic need (order books, blotters): table
// declarations and the one row order, net row changes and how they merge and
// apply to a plain map, size estimates, and the view checksum's canonical
// form. The server's engine keeps tables with these (src/engine/tables/); the
// SDK holds a view with them.
export * from './table-spec.js';
export * from './row-change.js';
export * from './size-estimate.js';
export * from './view-checksum.js';
export * from './batch-input.js';
