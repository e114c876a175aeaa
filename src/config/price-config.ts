// Owns: prices.yaml → a validated, frozen PriceTable (src/metering/prices.ts). Every problem is
// reported as file:line:col; a price of 0, a duplicate model id or alias, or a cache rate without
// a base rate is refused (a mistaken $0 would silently make a model free).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from './typebox.ts';
import { TollgateError, type Problem } from '../errors.ts';
import { perMillionToPico, perThousandToPico, type ModelPrice, type PriceTable, type TokenPrice } from '../metering/prices.ts';
import { parseYamlSource } from './yaml-source.ts';
import { validateAgainstSchema } from './validate-schema.ts';

/** A rate in US dollars per million tokens; `description` says which tokens. */
const usd = (description: string) => Type.Number({ exclusiveMinimum: 0, maximum: 100_000, description: `${description}, in US dollars per million tokens (more than 0)` });
const Rates = {
  input: usd('base input tokens (not read from or written to the prompt cache)'),
  output: Type.Optional(usd('output tokens, reasoning tokens included (default: input)')),
  cache_write: Type.Optional(usd('5-minute prompt-cache writes (default: input)')),
  cache_write_1h: Type.Optional(usd('1-hour prompt-cache writes (default: cache_write)')),
  cache_read: Type.Optional(usd('prompt-cache reads (default: input)')),
};
const ModelSchema = Type.Object(
  {
    ...Rates,
    aliases: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { description: 'other ids that mean this model (dated snapshots, -latest names)' })),
    max_output_tokens: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, description: 'the most the model emits; reserved when a request sets no cap (default: the provider\'s default_max_output_tokens)' })),
    long_context: Type.Optional(Type.Object({
      threshold_tokens: Type.Integer({ minimum: 1, description: 'prompt size (input, cache reads and writes) above which these rates apply' }),
      ...Rates,
    }, {
      additionalProperties: false,
      description: 'rates for every token of a request whose prompt exceeds threshold_tokens',
    })),
    priority: Type.Optional(Type.Object(Rates, {
      additionalProperties: false,
      description: 'rates of OpenAI priority processing (requests with service_tier: priority, or answered at that tier); without them such requests are refused (403 price_unknown)',
    })),
    note: Type.Optional(Type.String({ description: 'free text for people reading the file' })),
  },
  { additionalProperties: false, description: 'a model: input and output (and optionally cache_write, cache_write_1h, cache_read) in US dollars per million tokens' },
);

export const PriceTableSchema = Type.Object(
  {
    as_of: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'the date the prices were checked (YYYY-MM-DD)' }),
    sources: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'where the prices come from' }),
    providers: Type.Record(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$' }), Type.Object({
      default_max_output_tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'output tokens reserved for a model of this section without max_output_tokens', default: 128_000 })),
      web_search_per_1k: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 10_000, description: 'US dollars per 1,000 server-side web searches, charged as the provider reports them (Anthropic usage.server_tool_use.web_search_requests); omitted: searches are not priced' })),
      models: Type.Record(Type.String({ minLength: 1, maxLength: 256 }), ModelSchema, { description: 'models by id, as clients name them in requests' }),
    }, { additionalProperties: false }), { description: 'price-table sections by provider (anthropic, openai, or an openai_compatible name)' }),
  },
  {
    additionalProperties: false,
    examples: [{
      as_of: '2026-11-26',
      sources: ['https://platform.claude.com/docs/en/about-claude/pricing'],
      providers: {
        anthropic: {
          default_max_output_tokens: 128_000,
          web_search_per_1k: 10,
          models: {
            'claude-sonnet-4-5': {
              input: 3, cache_write: 3.75, cache_write_1h: 6, cache_read: 0.3, output: 15, max_output_tokens: 64_000, aliases: ['claude-sonnet-4-5-20250929'],
              long_context: { threshold_tokens: 200_000, input: 6, cache_write: 7.5, cache_write_1h: 12, cache_read: 0.6, output: 22.5 },
            },
          },
        },
        'acme-llm': { models: { 'acme-large': { input: 1, output: 2, note: 'the section of metering.openai_compatible provider acme-llm' } } },
      },
    }],
  },
);
type Rates = { input: number; output?: number | undefined; cache_write?: number | undefined; cache_write_1h?: number | undefined; cache_read?: number | undefined };

/** Missing cache rates cost as much as input (never less than the provider could bill). */
export function tokenPrice(r: Rates): TokenPrice {
  const input = perMillionToPico(r.input);
  const cacheWrite = r.cache_write === undefined ? input : perMillionToPico(r.cache_write);
  return {
    input,
    output: r.output === undefined ? input : perMillionToPico(r.output),
    cacheWrite,
    cacheWrite1h: r.cache_write_1h === undefined ? cacheWrite : perMillionToPico(r.cache_write_1h),
    cacheRead: r.cache_read === undefined ? input : perMillionToPico(r.cache_read),
  };
}

const DEFAULT_MAX_OUTPUT = 128_000;

export function parsePriceTable(file: string, text: string): { ok: true; table: PriceTable } | { ok: false; problems: Problem[] } {
  const parsed = parseYamlSource(file, text);
  if (!parsed.ok) return parsed;
  const source = parsed.source;
  if (source.value === null) return { ok: false, problems: [{ file, line: 1, col: 1, severity: 'error', message: 'the price table is empty; see docs/metering.md' }] };
  const checked = validateAgainstSchema(source, PriceTableSchema);
  if (!checked.ok) return checked;
  const v: Static<typeof PriceTableSchema> = checked.value;
  const problems: Problem[] = [];
  const sections = new Map<string, Map<string, ModelPrice>>();
  const webSearch = new Map<string, number>();
  for (const [provider, section] of Object.entries(v.providers)) {
    const models = new Map<string, ModelPrice>();
    const searchFee = section.web_search_per_1k === undefined ? 0 : perThousandToPico(section.web_search_per_1k);
    if (searchFee > 0) webSearch.set(provider, searchFee);
    for (const [id, m] of Object.entries(section.models)) {
      const entry: ModelPrice = Object.freeze({
        id,
        provider,
        price: Object.freeze(tokenPrice(m)),
        longContext: m.long_context ? Object.freeze({ thresholdTokens: m.long_context.threshold_tokens, price: Object.freeze(tokenPrice(m.long_context)) }) : undefined,
        maxOutputTokens: m.max_output_tokens ?? section.default_max_output_tokens ?? DEFAULT_MAX_OUTPUT,
        fallback: false,
        webSearch: searchFee,
        priority: m.priority ? Object.freeze(tokenPrice(m.priority)) : undefined,
      });
      const names: Array<[string, (string | number)[]]> = [[id, ['providers', provider, 'models', id]]];
      (m.aliases ?? []).forEach((a, i) => names.push([a, ['providers', provider, 'models', id, 'aliases', i]]));
      for (const [name, at] of names) {
        const key = name.trim().toLowerCase();
        const other = models.get(key);
        if (other) {
          problems.push({ ...source.positionOf(at, { key: at.length === 4 }), severity: 'error', message: `model "${name}" is already defined (by ${other.id}) in providers.${provider}` });
          continue;
        }
        models.set(key, entry);
      }
    }
    sections.set(provider, models);
  }
  if (problems.length) return { ok: false, problems };
  return { ok: true, table: Object.freeze({ asOf: v.as_of, sources: Object.freeze([...v.sources]), sections, webSearch }) };
}

/** The prices.yaml shipped at the repository root. */
export const BUNDLED_PRICES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../prices.yaml');

/**
 * Reads the configured price table. When the configured file does not exist the bundled table is
 * used (and `usedBundled` says so, for a warning); an invalid file is an error with file:line:col.
 */
export function loadPriceTable(file: string): { table: PriceTable; file: string; usedBundled: boolean } {
  const usedBundled = !existsSync(file);
  const actual = usedBundled ? BUNDLED_PRICES : file;
  let text: string;
  try {
    text = readFileSync(actual, 'utf8');
  } catch (err) {
    throw new TollgateError('TOLLGATE_ERR_CONFIG_NOT_FOUND', `cannot read ${actual}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const r = parsePriceTable(actual, text);
  if (!r.ok) throw new TollgateError('TOLLGATE_ERR_CONFIG_INVALID', `invalid price table in ${actual}`, { problems: r.problems });
  return { table: r.table, file: actual, usedBundled };
}
