import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Credentials, jobOfRoute, readFragment, sameCredential, type KeyValueStore } from './auth';

const job = '0f8fad5b-d9cb-469f-a165-70867728950e';
const key = `tsk_${'A'.repeat(42)}-`;

class FakeStorage implements KeyValueStore {
  readonly items = new Map<string, string>();
  getItem = (name: string) => this.items.get(name) ?? null;
  setItem = (name: string, value: string) => void this.items.set(name, value);
  removeItem = (name: string) => void this.items.delete(name);
}

const stores = () => {
  const session = new FakeStorage();
  const local = new FakeStorage();
  return { session, local, credentials: new Credentials(session, local) };
};

test('a sign-in fragment gives its key and sends the tab to the jobs list', () => {
  assert.deepEqual(readFragment(`#key=${key}`), { key, hash: '#/' });
  assert.deepEqual(readFragment(`key=${key}`), { key, hash: '#/' });
  assert.deepEqual(readFragment('#key=%20tsk_x%20'), { key: 'tsk_x', hash: '#/' }, 'escaped and trimmed');
  assert.deepEqual(readFragment('#key='), { key: undefined, hash: '#/' }, 'an empty key is taken out all the same');
});

test('a share fragment gives its job and token and keeps the route without the token', () => {
  assert.deepEqual(readFragment(`#/jobs/${job}?share=tss_abc-_1`), { share: { jobId: job, token: 'tss_abc-_1' }, hash: `#/jobs/${job}` });
  assert.deepEqual(readFragment(`#/jobs/${job.toUpperCase()}?x=1&share=tss_abc`), { share: { jobId: job, token: 'tss_abc' }, hash: `#/jobs/${job.toUpperCase()}?x=1` });
  // A share token anywhere but a job's route opens nothing, and still leaves the address.
  assert.deepEqual(readFragment('#/?share=tss_abc'), { share: undefined, hash: '#/' });
  assert.deepEqual(readFragment(`#/jobs/${job}?share=`), { share: undefined, hash: `#/jobs/${job}` });
});

test('fragments without a token are left alone', () => {
  for (const hash of ['', '#', '#/', '#/new', `#/jobs/${job}`, '#/?state=Running', '#/keys=1', '#mykey=x']) {
    assert.equal(readFragment(hash), null, hash);
  }
});

test('the job of a route', () => {
  assert.equal(jobOfRoute(`#/jobs/${job}`), job);
  assert.equal(jobOfRoute(`#/jobs/${job}?share=x`), job);
  assert.equal(jobOfRoute(`/jobs/${job.toUpperCase()}`), job);
  assert.equal(jobOfRoute(`#/jobs/${job}/x`), undefined);
  assert.equal(jobOfRoute('#/new'), undefined);
});

test('a key is kept for the tab unless remembered, and lives in one storage only', () => {
  const { session, local, credentials } = stores();
  assert.equal(credentials.key, null);
  credentials.signIn(key, false);
  assert.deepEqual([session.getItem('auth.key'), local.getItem('auth.key')], [key, null]);
  assert.equal(credentials.remembered, false);

  credentials.remember(true);
  assert.deepEqual([session.getItem('auth.key'), local.getItem('auth.key')], [null, key]);
  assert.equal(credentials.remembered, true);
  assert.equal(credentials.key, key);

  credentials.remember(false);
  assert.deepEqual([session.getItem('auth.key'), local.getItem('auth.key')], [key, null]);

  credentials.signIn('tsk_other', true);
  assert.deepEqual([session.getItem('auth.key'), local.getItem('auth.key')], [null, 'tsk_other']);
  credentials.signIn(key, false); // a sign-in for the tab forgets the remembered key: one key per browser
  assert.deepEqual([session.getItem('auth.key'), local.getItem('auth.key')], [key, null]);
});

test('a sign-in URL keeps its key for the tab, and a remembered key stays remembered when it is the same', () => {
  const { session, local, credentials } = stores();
  credentials.signIn(key, true);
  credentials.signInFromUrl(key);
  assert.deepEqual([session.getItem('auth.key'), local.getItem('auth.key')], [null, key]);
  credentials.signInFromUrl('tsk_new');
  assert.deepEqual([session.getItem('auth.key'), local.getItem('auth.key')], ['tsk_new', null]);
});

test('a share token is used on its job’s page only; the key everywhere else', () => {
  const { credentials } = stores();
  assert.deepEqual(credentials.for('#/'), { kind: 'none' });
  credentials.addShare(job.toUpperCase(), 'tss_1');
  assert.deepEqual(credentials.for(`#/jobs/${job}`), { kind: 'share', token: 'tss_1', jobId: job });
  assert.deepEqual(credentials.for('#/'), { kind: 'none' });
  assert.deepEqual(credentials.for(`#/jobs/${job.replace('0f', '1f')}`), { kind: 'none' });

  credentials.signIn(key, false);
  assert.deepEqual(credentials.for('#/new'), { kind: 'key', token: key });
  assert.deepEqual(credentials.for(`#/jobs/${job}`), { kind: 'share', token: 'tss_1', jobId: job }, 'the link opened in this tab wins');
  credentials.forgetShare(job);
  assert.deepEqual(credentials.for(`#/jobs/${job}`), { kind: 'key', token: key });
});

test('signing out forgets the key wherever it was, and every share token', () => {
  const { session, local, credentials } = stores();
  credentials.signIn(key, true);
  credentials.addShare(job, 'tss_1');
  credentials.signOut();
  assert.equal(credentials.key, null);
  assert.deepEqual(credentials.shares(), {});
  assert.equal(session.items.size + local.items.size, 0);
});

test('unreadable stored shares count as none', () => {
  const { session, credentials } = stores();
  session.setItem('auth.shares', '{not json');
  assert.deepEqual(credentials.shares(), {});
  session.setItem('auth.shares', 'null');
  assert.deepEqual(credentials.shares(), {});
});

test('credentials compare by kind and token', () => {
  assert.ok(sameCredential({ kind: 'none' }, { kind: 'none' }));
  assert.ok(sameCredential({ kind: 'key', token: 'a' }, { kind: 'key', token: 'a' }));
  assert.ok(!sameCredential({ kind: 'key', token: 'a' }, { kind: 'key', token: 'b' }));
  assert.ok(!sameCredential({ kind: 'key', token: 'a' }, { kind: 'share', token: 'a', jobId: job }));
  assert.ok(!sameCredential({ kind: 'none' }, { kind: 'key', token: 'a' }));
});
