// Public face of the HMP client and the `info migrate` parser.
export { HmpClient, type HmpClientOptions } from './client.js';
export { HMP_PROMPT, cleanOutput, looksLikeHmpError, stripTerminalCodes } from './clean.js';
export { HmpCommandError, HmpError } from './errors.js';
export { parseHmpNumber, parseHmpSize, parseInfoMigrate } from './info-migrate.js';
export { PromptStreamTransport, TelnetTransport, type HmpTransport, type TelnetConnectOptions } from './transport.js';
