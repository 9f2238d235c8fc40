import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileNameFrom } from './images';

test('a download is saved under the name Content-Disposition gives, filename* first', () => {
  assert.equal(fileNameFrom("attachment; filename=job-1.dat; filename*=UTF-8''job-1.dat", 'x'), 'job-1.dat');
  assert.equal(fileNameFrom("attachment; filename=\"a b.dat\"; filename*=UTF-8''a%20b%C3%A9.dat", 'x'), 'a bé.dat');
  assert.equal(fileNameFrom('attachment; filename="model.onnx"', 'x'), 'model.onnx');
  assert.equal(fileNameFrom('attachment; filename=../../etc.dat', 'x'), '.._.._etc.dat');
  assert.equal(fileNameFrom('attachment', 'job.dat'), 'job.dat');
  assert.equal(fileNameFrom(null, 'job.dat'), 'job.dat');
});
