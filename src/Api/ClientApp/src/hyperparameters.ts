import type { Augmentation, Hyperparameters } from './types';

/** What the augmentation fields of the new-job form hold (text as typed; an empty number means that part is off). */
export interface AugmentationForm {
  on: boolean;
  padding: string;
  flip: boolean;
  translate: string;
}

/** The augmentation the form describes, as POST /jobs takes it: null when it is off or no part is chosen. */
export function augmentationFrom(form: AugmentationForm): Augmentation | null {
  if (!form.on) return null;
  const padding = form.padding.trim();
  const translate = form.translate.trim();
  const augmentation: Augmentation = {
    randomCrop: padding === '' ? null : { padding: Number(padding) },
    horizontalFlip: form.flip,
    translate: translate === '' ? null : Number(translate),
  };
  return augmentation.randomCrop || augmentation.horizontalFlip || augmentation.translate != null ? augmentation : null;
}

/** A train image as a job with this seed trains on it in epoch `variant` (the sample PNG with the same settings). */
export function augmentedSampleUrl(datasetId: string, index: number, augmentation: Augmentation, seed: number, variant: number): string {
  const query = new URLSearchParams();
  if (augmentation.randomCrop) query.set('randomCrop', String(augmentation.randomCrop.padding));
  if (augmentation.horizontalFlip) query.set('horizontalFlip', 'true');
  if (augmentation.translate != null) query.set('translate', String(augmentation.translate));
  query.set('seed', String(seed));
  query.set('variant', String(variant));
  return `datasets/${datasetId}/samples/${index}.png?${query}`;
}

/** One line: "random crop (padding 4), horizontal flip, translate ±2", or "none". */
export function describeAugmentation(augmentation: Augmentation | null | undefined): string {
  const parts = [
    augmentation?.randomCrop ? `random crop (padding ${augmentation.randomCrop.padding})` : '',
    augmentation?.horizontalFlip ? 'horizontal flip' : '',
    augmentation?.translate != null ? `translate ±${augmentation.translate}` : '',
  ].filter((p) => p !== '');
  return parts.length > 0 ? parts.join(', ') : 'none';
}

/** A job's hyperparameters as one readable line, the nested augmentation included. */
export function describeHyperparameters(hp: Hyperparameters): string {
  const optimizer = hp.optimizer === 'sgd'
    ? `SGD${hp.nesterov ? ' (Nesterov)' : ''}, momentum ${hp.momentum}`
    : hp.optimizer === 'adam' ? 'Adam' : 'AdamW';
  const schedule = hp.schedule === 'step' ? `step (× ${hp.gamma} every ${hp.stepSize} epochs)` : hp.schedule;
  const validation = hp.validationFraction == null ? 'test split (or 10%)' : hp.validationFraction === 0 ? 'none' : `${hp.validationFraction * 100}% held out`;
  return [
    `${hp.epochs} epoch${hp.epochs === 1 ? '' : 's'} of batches of ${hp.batchSize}`,
    `${optimizer}, learning rate ${hp.learningRate} (${schedule})`,
    `weight decay ${hp.weightDecay}`,
    `validation: ${validation}`,
    `seed ${hp.seed}`,
    `augmentation: ${describeAugmentation(hp.augmentation)}`,
  ].join(' · ');
}
