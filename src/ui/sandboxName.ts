/** A free, valid sandbox name from the first words of a task. */
export function suggestName(text: string, taken: ReadonlySet<string>): string {
  const base =
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .split('-')
      .filter(Boolean)
      .slice(0, 4)
      .join('-')
      .slice(0, 40)
      .replace(/-+$/, '') || 'sandbox';
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}
