import type { ModelSpec } from './types';

/** A spec as JSON that reads like a table: one line per layer. */
export function formatSpec(spec: ModelSpec): string {
  const inline = (o: object) => `{ ${Object.entries(o).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')} }`;
  const lines = Object.entries(spec).filter(([, v]) => v !== null && v !== undefined).map(([key, value]) =>
    key === 'layers' && Array.isArray(value)
      ? `  "layers": [\n${value.map((l) => `    ${inline(l as object)}`).join(',\n')}\n  ]`
      : `  ${JSON.stringify(key)}: ${typeof value === 'object' ? inline(value as object) : JSON.stringify(value)}`);
  return `{\n${lines.join(',\n')}\n}`;
}
