// Owns: which requests to an LLM provider spend money that Tollgate cannot meter — batch jobs,
// fine-tuning, images, audio, realtime sessions, Assistants runs, … — so that the metering stage
// can refuse them (metering.unmetered_endpoints: refuse, the default) instead of letting them
// bypass every budget with the organisation's injected key. PURE.
//
// The list names the documented endpoints that create billable work, and every WebSocket upgrade
// to these hosts (the Realtime and Live APIs, the Responses API's WebSocket mode: model calls on a
// connection Tollgate does not read). Everything else on these hosts that is not a model endpoint
// (settings, model lists, file uploads, token counting, reading a batch's results) stays free to
// pass: Claude Code and the SDKs call those at start-up.
import type { OpenAiCompatibleBase } from './endpoints.ts';
import { asciiLower } from '../classify/request-framing.ts';

export interface UnmeteredSpend {
  provider: string;
  /** What the endpoint is, for the refusal message ("the Message Batches API"). */
  what: string;
}

/** One path pattern: literal segments, `*` for exactly one segment (an id). */
interface SpendRoute {
  method: 'POST' | 'GET';
  segments: readonly string[];
  what: string;
}

const route = (method: SpendRoute['method'], path: string, what: string): SpendRoute => ({ method, segments: path.split('/').filter(Boolean), what });

const ANTHROPIC: readonly SpendRoute[] = [
  route('POST', '/v1/messages/batches', 'the Message Batches API (billed when the batch runs)'),
  route('POST', '/v1/complete', 'the legacy Text Completions API (its responses carry no usage)'),
];

/** Relative to the base path (`/v1` for OpenAI). */
const OPENAI: readonly SpendRoute[] = [
  route('POST', '/batches', 'the Batch API (billed when the batch runs)'),
  route('POST', '/fine_tuning/jobs', 'fine-tuning jobs'),
  route('POST', '/images/generations', 'the Images API'),
  route('POST', '/images/edits', 'the Images API'),
  route('POST', '/images/variations', 'the Images API'),
  route('POST', '/audio/speech', 'the Audio API'),
  route('POST', '/audio/transcriptions', 'the Audio API'),
  route('POST', '/audio/translations', 'the Audio API'),
  route('GET', '/realtime', 'the Realtime API'),
  route('POST', '/realtime/sessions', 'the Realtime API'),
  route('POST', '/realtime/transcription_sessions', 'the Realtime API'),
  route('POST', '/realtime/client_secrets', 'the Realtime API'),
  route('POST', '/realtime/calls', 'the Realtime API'),
  route('POST', '/realtime/calls/*/accept', 'the Realtime API'),
  route('POST', '/live/sessions', 'the Live API'),
  route('POST', '/responses/compact', 'response compaction (a model call whose usage Tollgate does not read)'),
  route('POST', '/threads/runs', 'Assistants runs'),
  route('POST', '/threads/*/runs', 'Assistants runs'),
  route('POST', '/threads/*/runs/*/submit_tool_outputs', 'Assistants runs'),
  route('POST', '/videos', 'the Videos API'),
  route('POST', '/videos/*/remix', 'the Videos API'),
  route('POST', '/evals/*/runs', 'eval runs'),
  route('POST', '/containers', 'code interpreter containers'),
];

function matches(r: SpendRoute, method: string, segments: readonly string[]): boolean {
  if (r.method !== method || r.segments.length !== segments.length) return false;
  return r.segments.every((s, i) => s === '*' || s === segments[i]);
}

function find(routes: readonly SpendRoute[], method: string, segments: readonly string[], provider: string): UnmeteredSpend | undefined {
  const r = routes.find((x) => matches(x, method, segments));
  return r ? { provider, what: r.what } : undefined;
}

/** The provider whose API a host serves (any path), or undefined. */
function providerOfHost(host: string, port: number, compatible: readonly OpenAiCompatibleBase[]): string | undefined {
  if (host === 'api.anthropic.com') return 'anthropic';
  if (host === 'api.openai.com') return 'openai';
  return compatible.find((b) => b.host === host && b.port === port)?.name;
}

/** `path` split into segments after `prefix` (compared without case), or undefined when it is not under it. */
function under(prefix: readonly string[], segments: readonly string[]): readonly string[] | undefined {
  if (segments.length < prefix.length) return undefined;
  for (let i = 0; i < prefix.length; i++) if (segments[i] !== prefix[i]) return undefined;
  return segments.slice(prefix.length);
}

/**
 * The billable endpoint Tollgate cannot meter that a request targets, or undefined. `path` is the
 * normalised path without the query; it is compared without case (a provider that routes
 * `/V1/Batches` like `/v1/batches` must not open a way around the check). Any protocol upgrade
 * (`upgrade`: a WebSocket) to one of these hosts counts as unmeterable.
 */
export function unmeteredSpendEndpoint(
  req: { host: string; port: number; method: string; path: string | undefined; upgrade?: boolean },
  compatible: readonly OpenAiCompatibleBase[] = [],
): UnmeteredSpend | undefined {
  // Every request of every host passes here: other hosts cost one comparison, no string work.
  const provider = providerOfHost(req.host, req.port, compatible);
  if (provider === undefined) return undefined;
  if (req.upgrade === true) return { provider, what: 'WebSocket APIs (Realtime, Live, the Responses API\'s WebSocket mode)' };
  if (req.path === undefined) return undefined;
  const method = req.method.toUpperCase();
  const segments = asciiLower(req.path).split('/').filter(Boolean);
  if (req.host === 'api.anthropic.com') return find(ANTHROPIC, method, segments, 'anthropic');
  if (req.host === 'api.openai.com') {
    const rest = under(['v1'], segments);
    return rest && find(OPENAI, method, rest, 'openai');
  }
  for (const base of compatible) {
    if (base.host !== req.host || base.port !== req.port) continue;
    const rest = under(asciiLower(base.pathPrefix).split('/').filter(Boolean), segments);
    const hit = rest && find(OPENAI, method, rest, base.name);
    if (hit) return hit;
  }
  return undefined;
}
