import t from 'tap';
import { createRedactor, REDACTED, redactSecrets } from '../../../src/credentials/redact.ts';

t.test('redacts every known value and its encoded forms', async (t) => {
  const r = createRedactor(['CANARY_GH_123', 'p@ss w/rd', 'abc']);
  const rows: Array<[string, string]> = [
    ['Authorization: Bearer CANARY_GH_123', `Authorization: Bearer ${REDACTED}`],
    ['url?key=p%40ss%20w%2Frd&x=1', `url?key=${REDACTED}&x=1`],
    [`basic ${Buffer.from('CANARY_GH_123').toString('base64')}`, `basic ${REDACTED}`],
    ['CANARY_GH_123CANARY_GH_123', `${REDACTED}${REDACTED}`],
    ['abc is too short to redact', 'abc is too short to redact'],
    ['nothing here', 'nothing here'],
  ];
  for (const [input, want] of rows) t.equal(r(input), want, input);
});

t.test('regex metacharacters in secrets are literal', async (t) => {
  t.equal(redactSecrets('a.b*c+d and axbxc', ['a.b*c+d']), `${REDACTED} and axbxc`);
  t.equal(redactSecrets('x', []), 'x');
});
