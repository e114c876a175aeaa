// The bench's one median (bench/lib/load.ts): the middle value, or the mean of the middle two.
import t from 'tap';
import { median } from '../../../bench/lib/load.ts';

const cases: Array<[number[], number]> = [
  [[5], 5],
  [[3, 1, 2], 2],
  [[4, 1, 3, 2], 2.5],
  [[0.9, 1.1, 0.95, 1.3, 0.7], 0.95],
  [[2, 2, 2, 2], 2],
];
for (const [xs, want] of cases) t.equal(median(xs), want, `median of ${xs.join(', ')}`);
t.ok(Number.isNaN(median([])), 'none: NaN');
const xs = [3, 1, 2];
median(xs);
t.same(xs, [3, 1, 2], 'the input is not reordered');
