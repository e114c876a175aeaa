// Owns: folding free-form values into the closed label sets metrics may carry — teams from
// org.yaml, providers from the metered endpoints, models from the price table — so that no
// request can mint a new time series. Anything outside the set becomes `other`.
import { loadPriceTable } from '../config/price-config.ts';
import type { GatewayConfig } from '../config/gateway-config.ts';
import { resolveModelPrice, type PriceTable } from '../metering/prices.ts';

/** The label value of anything outside a closed set. */
export const OTHER = 'other';
/** The team label of an exchange that never had a principal (refused before authentication). */
export const NO_TEAM = 'none';

export interface LabelSets {
  /** A team key of the org.yaml in force, `none` without a principal, else `other`. */
  team(team: string | undefined): string;
  /** A metered provider name (anthropic, openai, a configured openai_compatible name), else `other`. */
  provider(provider: string): string;
  /** The canonical prices.yaml id of the model (aliases and dated snapshots folded), else `other`. */
  model(provider: string, model: string | undefined): string;
}

export interface LabelSetsOptions {
  /** The teams of the org.yaml currently in force (read on every call: follows hot reloads). */
  teams: () => ReadonlyMap<string, unknown> | ReadonlySet<string>;
  prices: PriceTable;
  /** Metered providers and the price-table section each one uses. */
  providers: ReadonlyArray<{ name: string; priceTable: string }>;
  /** Distinct raw model strings remembered per provider (a bound on the memo, not on the labels). */
  memoSize?: number;
}

export function createLabelSets(opts: LabelSetsOptions): LabelSets {
  const sections = new Map(opts.providers.map((p) => [p.name, p.priceTable]));
  const memoSize = opts.memoSize ?? 512;
  // provider → raw model string → label: a hit allocates nothing.
  const memo = new Map<string, Map<string, string>>();
  return {
    team: (team) => (team === undefined ? NO_TEAM : opts.teams().has(team) ? team : OTHER),
    provider: (provider) => (sections.has(provider) ? provider : OTHER),
    model(provider, model) {
      if (model === undefined) return OTHER;
      const section = sections.get(provider);
      if (section === undefined) return OTHER;
      let byModel = memo.get(provider);
      if (!byModel) {
        byModel = new Map();
        memo.set(provider, byModel);
      }
      const hit = byModel.get(model);
      if (hit !== undefined) return hit;
      const label = resolveModelPrice(opts.prices, section, model)?.id ?? OTHER;
      if (byModel.size < memoSize) byModel.set(model, label);
      return label;
    },
  };
}

/** The built-in metered providers plus `metering.openai_compatible`, as in src/metering/endpoints.ts. */
export function meteredProviders(config: Pick<GatewayConfig, 'metering'>): Array<{ name: string; priceTable: string }> {
  return [
    { name: 'anthropic', priceTable: 'anthropic' },
    { name: 'openai', priceTable: 'openai' },
    ...config.metering.openaiCompatible.map((o) => ({ name: o.name, priceTable: o.priceTable })),
  ];
}

/**
 * Label sets for a gateway: the configured price table (or the bundled one) and providers. An
 * unreadable price table folds every model into `other` here; metering loads the same file and
 * refuses to start with it, so the error is reported once, by metering.
 */
export function labelSetsFromConfig(config: Pick<GatewayConfig, 'metering' | 'prices'>, teams: LabelSetsOptions['teams']): LabelSets {
  let prices: PriceTable;
  try {
    prices = loadPriceTable(config.prices).table;
  } catch {
    prices = { asOf: '', sources: [], sections: new Map(), webSearch: new Map() };
  }
  return createLabelSets({ teams, prices, providers: meteredProviders(config) });
}
