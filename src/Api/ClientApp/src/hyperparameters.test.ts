import assert from 'node:assert/strict';
import { test } from 'node:test';
import { augmentationFrom, augmentedSampleUrl, describeAugmentation, describeHyperparameters } from './hyperparameters';
import type { Hyperparameters } from './types';

test('the augmentation form gives the JSON POST /jobs takes, or null when off or empty', () => {
  assert.deepEqual(augmentationFrom({ on: true, padding: '4', flip: true, translate: ' 2 ' }), { randomCrop: { padding: 4 }, horizontalFlip: true, translate: 2 });
  assert.deepEqual(augmentationFrom({ on: true, padding: '', flip: false, translate: '3' }), { randomCrop: null, horizontalFlip: false, translate: 3 });
  assert.equal(augmentationFrom({ on: false, padding: '4', flip: true, translate: '2' }), null);
  assert.equal(augmentationFrom({ on: true, padding: '', flip: false, translate: '' }), null);
  // A value the server will refuse is passed on as typed, so its 400 names the field.
  assert.deepEqual(augmentationFrom({ on: true, padding: '0', flip: false, translate: '' }), { randomCrop: { padding: 0 }, horizontalFlip: false, translate: null });
});

test('a preview asks for the parts that are on, the seed and the epoch', () => {
  assert.equal(
    augmentedSampleUrl('d1', 3, { randomCrop: { padding: 4 }, horizontalFlip: true, translate: 2 }, 7, 5),
    'datasets/d1/samples/3.png?randomCrop=4&horizontalFlip=true&translate=2&seed=7&variant=5');
  assert.equal(augmentedSampleUrl('d1', 0, { randomCrop: null, horizontalFlip: false, translate: 1 }, 1, 1), 'datasets/d1/samples/0.png?translate=1&seed=1&variant=1');
});

test('hyperparameters read as one line, the nested augmentation in words', () => {
  const hp: Hyperparameters = {
    epochs: 10, batchSize: 64, optimizer: 'sgd', learningRate: 0.05, momentum: 0.9, nesterov: false, weightDecay: 0,
    schedule: 'constant', stepSize: 5, gamma: 0.1, seed: 3, validationFraction: null,
    augmentation: { randomCrop: { padding: 4 }, horizontalFlip: true, translate: null },
  };
  assert.equal(describeHyperparameters(hp),
    '10 epochs of batches of 64 · SGD, momentum 0.9, learning rate 0.05 (constant) · weight decay 0 · validation: test split (or 10%) · seed 3 · augmentation: random crop (padding 4), horizontal flip');
  assert.match(describeHyperparameters({ ...hp, optimizer: 'adam', augmentation: null }), /Adam, learning rate 0\.05 .* augmentation: none$/);
  assert.equal(describeAugmentation({ randomCrop: null, horizontalFlip: false, translate: 2 }), 'translate ±2');
  assert.equal(describeAugmentation(undefined), 'none');
});
