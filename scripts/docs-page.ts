// Owns: what every docs generator in scripts/ shares — escaping a Markdown table cell, knowing
// whether a generator was run directly, and the write-or-`--check` entry point that writes pages or
// exits 1 naming the stale ones. The generators themselves own their pages' content.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository root (scripts/ is one level below it). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A generated page: where it goes and its whole text. */
export interface DocsPage {
  readonly path: string;
  readonly text: string;
}

/** Markdown table cells may not hold a pipe or a line break. */
export function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/**
 * Plain text (a schema description, a metric's help) as Markdown that shows it as written:
 * outside `code spans`, characters Markdown would read as emphasis, links or HTML are escaped
 * (an underscore inside a word, as in snake_case, is left alone: it is never emphasis).
 */
export function prose(s: string): string {
  return s.split(/(`[^`]*`)/).map((part, i) => (i % 2 === 1 ? part : part.replace(/[\\*<>[\]]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, (c) => `\\${c}`))).join('');
}

/** A code span that survives any backticks inside it. */
export function code(s: string): string {
  const fence = s.includes('`') ? '``' : '`';
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${s}${pad}${fence}`;
}

/** Whether the module at `moduleUrl` is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && moduleUrl === pathToFileURL(path.resolve(entry)).href;
}

/** The pages whose text on disk differs from `pages` (a missing page is stale). */
export function stalePages(pages: readonly DocsPage[]): DocsPage[] {
  return pages.filter((p) => {
    try {
      return readFileSync(p.path, 'utf8') !== p.text;
    } catch {
      return true;
    }
  });
}

/**
 * The command line of a generator: writes `pages`, or with `--check` writes nothing and exits 1
 * naming every stale page and the command that regenerates it.
 */
export function writeOrCheck(pages: readonly DocsPage[], regenerate: string): void {
  if (process.argv.includes('--check')) {
    const stale = stalePages(pages);
    for (const p of stale) process.stderr.write(`${path.relative(process.cwd(), p.path)} is stale: run ${regenerate}\n`);
    if (stale.length > 0) process.exit(1);
    return;
  }
  for (const p of pages) {
    mkdirSync(path.dirname(p.path), { recursive: true });
    writeFileSync(p.path, p.text);
  }
}
