// Protocol 2's message kinds: the byte in front of each message of a
// protocol-2 frame saying which FlatBuffers root follows, and the in-memory
// mark that tells a ready-made Snapshot2 / Delta2 from a Message.

/** Kind byte of a protocol-2 message (schemas/tickfan.fbs, "Framing"; 5: a KeyedDelta2's body alone, no FlatBuffers). */
export const MessageKind = { MESSAGE: 0, SNAPSHOT2: 1, DELTA2: 2, KEYED_SNAPSHOT2: 3, KEYED_DELTA2: 4, KEYED_BODY2: 5 } as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

/**
 * Encoded messages live in memory behind a u32 little-endian size. A
 * protocol-2 root of its own (Snapshot2, Delta2) has this bit set in that
 * size, and its bytes start with its kind byte; a Message has neither. Never
 * on the wire: the frame writers turn it into each protocol's framing.
 */
export const BARE_FLAG = 0x8000_0000;
