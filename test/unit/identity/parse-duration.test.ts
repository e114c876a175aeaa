import t from 'tap';
import { formatDuration, parseDuration } from '../../../src/identity/parse-duration.ts';

const cases: Array<[string, number | undefined]> = [
  ['12h', 12 * 3_600_000],
  ['30m', 30 * 60_000],
  ['7d', 7 * 86_400_000],
  ['2w', 14 * 86_400_000],
  ['90s', 90_000],
  ['500ms', 500],
  ['1h30m', 90 * 60_000],
  [' 12h ', 12 * 3_600_000],
  ['', undefined],
  ['12', undefined],
  ['h', undefined],
  ['0h', undefined],
  ['-1h', undefined],
  ['1.5h', undefined],
  ['12H', undefined],
  ['1y', undefined],
  ['99999999999999999999d', undefined],
];
for (const [text, ms] of cases) t.equal(parseDuration(text), ms, JSON.stringify(text));

t.equal(formatDuration(12 * 3_600_000), '12h');
t.equal(formatDuration(90_000), '90s');
t.equal(formatDuration(7 * 86_400_000), '7d');
t.equal(formatDuration(1), '1ms');
