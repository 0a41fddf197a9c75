// tickfan wire protocol: values, messages, codes, the FlatBuffers encoder,
// decoder and framing, the JSON form, and topic names. Pure; runs in browsers.
export type { FieldValue, Changes, State } from './values.js';
export { isFieldValue, checkFieldValue, sameValue, valueSize, toChanges } from './values.js';
export { valueToJson, valueFromJson, fieldsToJson, changesFromJson } from './json-values.js';
export { messageToJson, messageFromJson, messageToCommand, commandToMessage } from './json-messages.js';
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
  TopicStatusMsg,
  AckMsg,
  ErrorMsg,
  HeartbeatMsg,
} from './messages.js';
export { TopicState, isClientMessage } from './messages.js';
export { PROTOCOL_VERSION } from './messages.js';
export { Encoder } from './encode.js';
export { decodeMessage } from './decode.js';
export { FrameWriter, SERVER_FRAME_HEADER, decodeServerFrame, splitMessages, frameSeq, clientFrame } from './framing.js';
