// Public face of the QMP client.
export { QmpClient, type QmpConnectOptions } from './client.js';
export { QmpCommandError, QmpConnectError, QmpDisconnectedError, QmpProtocolError } from './errors.js';
export { QmpEventListener, eventMatcher, type EventFilter } from './events.js';
export { LineDecoder, encodeMessage, type Frame, type QmpMessage } from './framing.js';
export { MemoryTranscript, Transcript, type QmpTranscript, type TranscriptEntry } from './transcript.js';
export { eventTimeMs, type QemuVersion, type QmpEvent, type QmpGreeting, type QmpState, type QmpStatus, type QmpTimestamp } from './types.js';
