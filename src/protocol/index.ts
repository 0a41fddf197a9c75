// tickfan wire protocol: values, messages, codes and the FlatBuffers codec.
export type { FieldValue, Changes, State } from './values.js';
export { isFieldValue, sameValue, valueSize } from './values.js';
export { valueToJson, valueFromJson, fieldsToJson, changesFromJson } from './json-values.js';
export { messageToJson, messageFromJson, messageToCommand, commandToMessage } from './json-messages.js';
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
  TopicStatusMsg,
  AckMsg,
  ErrorMsg,
  HeartbeatMsg,
} from './messages.js';
export { TopicState, isClientMessage } from './messages.js';
export {
  Encoder,
  FrameWriter,
  PROTOCOL_VERSION,
  SERVER_FRAME_HEADER,
  decodeMessage,
  decodeServerFrame,
  splitMessages,
  frameSeq,
  clientFrame,
} from './codec.js';
