// Talking to the guest agent from inside the lab: the host-side tool (miglab-probe), the request
// client, and the 1 kHz downtime probe.
export { AGENT_PORT, AgentClient, AgentError, type AgentClientOptions, type CallOptions, type DirtyStartOptions } from './agent-client.js';
export {
  analyzeProbe,
  parseProbeCsv,
  ProbeError,
  startProbe,
  type AnalyzeOptions,
  type ProbeCsv,
  type ProbeHandle,
  type ProbeMeta,
  type ProbeResult,
  type ProbeRow,
  type ProbeRun,
  type StartProbeOptions,
} from './probe.js';
export { ensureProbeTool, PROBE_TOOL_CFLAGS, PROBE_TOOL_NAME, probeToolKey, probeToolPath, probeToolSourcePath, type ProbeToolOptions } from './probe-tool.js';
export * from './replies.js';
export { checkConnectTarget, MAX_CONNECT_TIMEOUT_MS, tcpConnectFrom } from './tcp-connect.js';
