// How big V8's young generation (where new objects are allocated) may grow in
// a tickfan server process and in each fan-out worker.
//
// Node lets it grow to 16 MiB semi-spaces (48 MiB committed) once many
// objects survive a scavenge — which a connection storm causes (every new
// connection's records survive). The server's steady allocation is small
// (about 1.3 KB per publish, nothing per subscriber on the fast path), so the
// large young generation bought nothing but resident memory: measured with
// `tickfan bench connections`, 4 MiB semi-spaces took RSS at 19,700
// connections from 132.7 MiB to 111.8 MiB, with fan-out throughput and the
// latency tail unchanged within the machine's noise (README, Performance).

/** Largest semi-space, MiB (`node --max-semi-space-size`). */
export const SEMI_SPACE_MB = 4;

/**
 * Flags a server process should run with. `tickfan serve` has them (its
 * shebang and `npm start`); a program embedding `startServer` passes them to
 * node itself (they cannot be set once the process runs).
 */
export const SERVER_NODE_FLAGS: readonly string[] = [`--max-semi-space-size=${SEMI_SPACE_MB}`];

/** A fan-out worker's young generation, MiB: V8 sizes it at three semi-spaces. */
export const WORKER_YOUNG_GENERATION_MB = 3 * SEMI_SPACE_MB;
