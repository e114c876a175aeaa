import t from 'tap';
import { createLineWriter } from '../../../src/observability/line-writer.ts';

const tick = () => new Promise((r) => setImmediate(r));

t.test('lines written in one turn of the loop leave in one write, in order', async (t) => {
  const out: string[] = [];
  const w = createLineWriter((c) => out.push(c));
  w.write('a\n');
  w.write('b\n');
  w.write('c\n');
  t.same(out, [], 'nothing is written before the turn ends');
  await tick();
  t.same(out, ['a\nb\nc\n']);
  w.write('d\n');
  await tick();
  t.same(out, ['a\nb\nc\n', 'd\n'], 'the next turn is a new write');
});

t.test('a buffer past its bound is written at once', async (t) => {
  const out: string[] = [];
  const w = createLineWriter((c) => out.push(c), 8);
  w.write('12345\n');
  t.same(out, []);
  w.write('67890\n');
  t.same(out, ['12345\n67890\n'], 'written synchronously when the bound is crossed');
  await tick();
  t.same(out, ['12345\n67890\n'], 'the scheduled flush finds nothing left');
});

t.test('flush writes what is buffered now', async (t) => {
  const out: string[] = [];
  const w = createLineWriter((c) => out.push(c));
  w.flush();
  t.same(out, [], 'an empty buffer writes nothing');
  w.write('x\n');
  w.flush();
  t.same(out, ['x\n']);
  await tick();
  t.same(out, ['x\n']);
});
