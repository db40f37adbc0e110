/**
 * Byte sizes as people write them in config files: "512m", "4g", "1.5GiB", or a plain number of bytes.
 */

const UNITS: Record<string, number> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i;

/**
 * The number of bytes `value` stands for, or undefined when it is not a positive size.
 * Units are binary (k = 1024) whatever the suffix, as Docker reads them.
 */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const match = SIZE_PATTERN.exec(value.trim());
  if (!match) return undefined;
  const [, amount, unit, suffix] = match;
  const lowerUnit = unit.toLowerCase();
  // "4ib" has no unit for the "i" to qualify.
  if (lowerUnit === '' && suffix !== undefined && suffix.toLowerCase() === 'ib') return undefined;
  const multiplier = UNITS[lowerUnit];
  if (lowerUnit === '' && amount.includes('.')) return undefined;
  const bytes = Math.floor(Number(amount) * multiplier);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

/** A byte count for messages: "4 GiB", "1.5 GiB", "512 MiB", "100 B". */
export function formatSize(bytes: number): string {
  const names = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let index = 0;
  let amount = bytes;
  while (amount >= 1024 && index < names.length - 1) {
    amount /= 1024;
    index++;
  }
  const rounded = Math.round(amount * 100) / 100;
  return `${rounded} ${names[index]}`;
}
