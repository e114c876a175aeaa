// Owns: the Anthropic Messages SSE answer the bench streams (scenario 10) and parses (bench
// `parse`): message_start with usage, n text deltas, message_delta with the final usage,
// message_stop — as text pieces, so the upstream can write each delta as its own chunk.

const ev = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** message_start (usage: 25 input tokens) and content_block_start. */
export const STREAM_HEAD = ev('message_start', { type: 'message_start', message: { id: 'msg_bench', type: 'message', role: 'assistant', content: [], model: 'claude-haiku-4-5-20251001', stop_reason: null, stop_sequence: null, usage: { input_tokens: 25, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } } })
  + ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });

/** The i-th text delta. */
export const streamDelta = (i: number): string => ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `token ${i} of the benchmark stream ` } });

/** content_block_stop, message_delta with the final usage (n output tokens), message_stop. */
export const streamTail = (n: number): string => ev('content_block_stop', { type: 'content_block_stop', index: 0 })
  + ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: n } })
  + ev('message_stop', { type: 'message_stop' });
