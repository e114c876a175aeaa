import t from 'tap';
import path from 'node:path';
import { createMemorySecretSource, createSecretSource, envVarForSecret, isValidSecretName } from '../../../src/credentials/secret-source.ts';

t.test('env name', async (t) => {
  t.equal(envVarForSecret('TOLLGATE_SECRET_', 'github-token'), 'TOLLGATE_SECRET_GITHUB_TOKEN');
  t.equal(envVarForSecret('X_', 'aws.prod-key'), 'X_AWS_PROD_KEY');
});

t.test('env wins over file; file is trimmed; names cannot escape the dir', async (t) => {
  const dir = t.testdir({ 'github-token': '  from-file\n', 'only-file': 'f\n', empty: '\n' });
  const s = createSecretSource({ envPrefix: 'T_', dir, env: { T_GITHUB_TOKEN: 'from-env' } });
  t.equal(s.get('github-token'), 'from-env');
  t.equal(s.get('only-file'), 'f');
  t.equal(s.get('empty'), undefined);
  t.equal(s.get('missing'), undefined);
  t.equal(s.has('only-file'), true);
  t.equal(s.get(`../${path.basename(dir)}/only-file`), undefined);
  t.equal(isValidSecretName('../etc/passwd'), false);
  t.equal(isValidSecretName('a..b'), false);
  t.same(s.knownValues(['github-token', 'missing', 'only-file']), ['from-env', 'f']);
});

t.test('in-memory twin', async (t) => {
  const s = createMemorySecretSource({ a: '1' });
  t.equal(s.get('a'), '1');
  t.equal(s.has('b'), false);
});
