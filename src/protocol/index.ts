// tickfan wire protocol: values, messages, codes, the FlatBuffers encoder,
// decoder and framing, the JSON form, and topic names. Pure; runs in browsers.
export type { FieldValue, Changes, State } from './values.js';
export { isFieldValue, checkFieldValue, sameValue, valueSize, toChanges, ChangesScratch } from './values.js';
export type { ByteSink } from './builder.js';
export { valueToJson, valueFromJson, fieldsToJson, changesFromJson } from './json-values.js';
export { messageToJson, messageFromJson, messageToCommand, commandToMessage, payloadToJson, payloadFromJson } from './json-messages.js';
export { TopicPattern, validateTopic, isPattern, DEFAULT_MAX_TOPIC_LENGTH } from './topic-name.js';
export { ErrorCode, CloseCode, ERROR_CODE_TEXT, CLOSE_CODE_TEXT, TickfanError, errorCodeName } from './codes.js';
export type {
  AnyMessage,
  ClientMessage,
  ServerMessage,
  ResumePoint,
  HelloMsg,
  WelcomeMsg,
  SubscribeMsg,
  UnsubscribeMsg,
  PublishMsg,
  CatchUpMsg,
  PauseMsg,
  ResumeMsg,
  PingMsg,
  PongMsg,
  SnapshotMsg,
  DeltaMsg,
  Snapshot2Msg,
  Delta2Msg,
  Payload,
  ServeMsg,
  UnserveMsg,
  RequestMsg,
  ServiceRequestMsg,
  ReplyMsg,
  ResponseMsg,
  TopicStatusMsg,
  AckMsg,
  ErrorMsg,
  HeartbeatMsg,
  TableViewRequest,
  RowGuard,
  KeyRangeMsg,
  KeyedRowOp,
  KeyedBatchMsg,
  KeyedTableView,
  KeyedTableBinding,
  WireRowChange,
  WireTableChange,
  KeyedSnapshot2Msg,
  KeyedDelta2Msg,
  KeyedSnapshotMsg,
  KeyedDeltaMsg,
} from './messages.js';
export { KeyedEncoder, type KeyedDeltaOptions, type SnapshotTable } from './keyed-encode.js';
export { OpCode, readOps, type ReadOp } from './keyed-ops.js';
export { TopicState, isClientMessage } from './messages.js';
export { PROTOCOL_VERSION, MAX_PROTOCOL } from './messages.js';
export { Encoder, type TopicRef, type Delta2Options } from './encode.js';
export { decodeMessage, decodeMessage2, decodeEncoded } from './decode.js';
export { MessageKind } from './kinds.js';
export {
  FrameWriter,
  FrameWriter2,
  SERVER_FRAME_HEADER,
  SERVER_FRAME_HEADER_V2,
  ServerFrameReader,
  decodeServerFrame,
  decodeServerFrame2,
  splitMessages,
  splitMessages2,
  readVarint,
  varintSize,
  writeVarint,
  frameSeq,
  clientFrame,
  serverFrameSize,
} from './framing.js';
export { PackWriter, PackReader, PackedTag, readPacked, decimalOf, MAX_DECIMAL_EXPONENT, type PackedEntry } from './packed.js';
export { Protocol2Reader, type Unresolved } from './protocol2-reader.js';
export * from './keyed/index.js';
