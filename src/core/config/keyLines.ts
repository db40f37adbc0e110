/**
 * Where each key of a TOML text is written. smol-toml gives no positions for keys, so this scans the text for
 * where each table header and key is; errors then name the line.
 */
type Path = readonly string[];

// ---------------------------------------------------------------------------------------------------
// Key line locator. smol-toml gives no positions for keys, so this scans the text for where each table
// header and key is written. It assumes the text parses (it never throws, whatever the input).

/** A key path as written in TOML: bare segments as they are, others quoted. */
export function formatKeyPath(keyPath: Path): string {
  return keyPath.map((part) => (/^[A-Za-z0-9_-]+$/.test(part) ? part : JSON.stringify(part))).join('.');
}

/**
 * The 1-based line where `key` (a dotted key such as `agents."my.role".command`, or its parts) is
 * written: the key itself, or for a table its header (or the first key that creates it).
 * Undefined when the text does not mention it.
 */
export function locateKey(text: string, key: string | Path): number | undefined {
  const keyPath = typeof key === 'string' ? new KeyScanner(key).key() : key;
  return scanKeyLines(text).get(pathId(keyPath));
}

export function pathId(keyPath: Path): string {
  return JSON.stringify(keyPath);
}

export function scanKeyLines(text: string): Map<string, number> {
  const scanner = new KeyScanner(text);
  scanner.document();
  return scanner.lines;
}

class KeyScanner {
  readonly lines = new Map<string, number>();
  private i = 0;
  private readonly lineStarts: number[] = [0];

  constructor(private readonly s: string) {
    for (let k = 0; k < s.length; k++) if (s[k] === '\n') this.lineStarts.push(k + 1);
  }

  document(): void {
    let table: string[] = [];
    while (this.i < this.s.length) {
      this.skipBlank();
      const c = this.s[this.i];
      if (c === undefined) break;
      if (c === '\n' || c === '\r') {
        this.i++;
      } else if (c === '#') {
        this.skipLine();
      } else if (c === '[') {
        const start = this.i;
        const double = this.s[this.i + 1] === '[';
        this.i += double ? 2 : 1;
        this.skipBlank();
        const keyPath = this.key();
        this.skipBlank();
        if (this.s[this.i] === ']') this.i += double && this.s[this.i + 1] === ']' ? 2 : 1;
        if (keyPath.length > 0) {
          table = keyPath;
          this.record(keyPath, start);
        }
        this.skipLine();
      } else {
        const start = this.i;
        const keyPath = this.key();
        this.skipBlank();
        if (keyPath.length === 0 || this.s[this.i] !== '=') {
          this.skipLine();
          continue;
        }
        this.i++;
        const full = [...table, ...keyPath];
        this.record(full, start);
        this.value(full);
      }
    }
  }

  /** A dotted key; stops at the first character that cannot continue it. */
  key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.skipBlank();
      const part = this.keyPart();
      if (part === undefined) break;
      parts.push(part);
      this.skipBlank();
      if (this.s[this.i] !== '.') break;
      this.i++;
    }
    return parts;
  }

  private keyPart(): string | undefined {
    const c = this.s[this.i];
    if (c === '"') {
      const start = this.i;
      this.skipBasicString();
      return decodeBasic(this.s.slice(start + 1, this.s[this.i - 1] === '"' ? this.i - 1 : this.i));
    }
    if (c === "'") {
      const start = this.i;
      this.skipLiteralString();
      return this.s.slice(start + 1, this.s[this.i - 1] === "'" ? this.i - 1 : this.i);
    }
    let end = this.i;
    while (end < this.s.length && /[A-Za-z0-9_-]/.test(this.s[end])) end++;
    if (end === this.i) return undefined;
    const bare = this.s.slice(this.i, end);
    this.i = end;
    return bare;
  }

  /** A value; records keys of inline tables under `owner` (not inside arrays, where they repeat). */
  private value(owner: string[] | undefined): void {
    this.skipBlank();
    const s = this.s;
    const c = s[this.i];
    if (s.startsWith('"""', this.i)) this.skipMultiline('"');
    else if (s.startsWith("'''", this.i)) this.skipMultiline("'");
    else if (c === '"') this.skipBasicString();
    else if (c === "'") this.skipLiteralString();
    else if (c === '[') this.array();
    else if (c === '{') this.inlineTable(owner);
    else {
      while (this.i < s.length && !',]}#\n\r'.includes(s[this.i])) this.i++;
    }
  }

  private array(): void {
    this.i++;
    while (this.i < this.s.length) {
      this.skipSpace();
      const c = this.s[this.i];
      if (c === ']') {
        this.i++;
        return;
      }
      if (c === ',') {
        this.i++;
        continue;
      }
      const before = this.i;
      this.value(undefined);
      if (this.i === before) this.i++;
    }
  }

  private inlineTable(owner: string[] | undefined): void {
    this.i++;
    while (this.i < this.s.length) {
      this.skipSpace();
      const c = this.s[this.i];
      if (c === '}') {
        this.i++;
        return;
      }
      if (c === ',') {
        this.i++;
        continue;
      }
      const start = this.i;
      const keyPath = this.key();
      this.skipBlank();
      if (keyPath.length === 0 || this.s[this.i] !== '=') {
        if (this.i === start) this.i++;
        continue;
      }
      this.i++;
      const full = owner ? [...owner, ...keyPath] : undefined;
      if (full) this.record(full, start);
      this.value(full);
    }
  }

  private skipBasicString(): void {
    this.i++;
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === '\\') this.i += 2;
      else if (c === '"') {
        this.i++;
        return;
      } else if (c === '\n') return;
      else this.i++;
    }
  }

  private skipLiteralString(): void {
    this.i++;
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === "'") {
        this.i++;
        return;
      }
      if (c === '\n') return;
      this.i++;
    }
  }

  private skipMultiline(quote: '"' | "'"): void {
    const delimiter = quote.repeat(3);
    this.i += 3;
    while (this.i < this.s.length) {
      if (quote === '"' && this.s[this.i] === '\\') {
        this.i += 2;
      } else if (this.s.startsWith(delimiter, this.i)) {
        this.i += 3;
        // Up to two more quotes right before the delimiter belong to the string: `""""a"""""`.
        for (let extra = 0; extra < 2 && this.s[this.i] === quote; extra++) this.i++;
        return;
      } else {
        this.i++;
      }
    }
  }

  private skipBlank(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }

  /** Whitespace, newlines and comments, as allowed between array items. */
  private skipSpace(): void {
    for (;;) {
      const c = this.s[this.i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.i++;
      else if (c === '#') this.skipLine();
      else return;
    }
  }

  private skipLine(): void {
    while (this.i < this.s.length && this.s[this.i] !== '\n') this.i++;
  }

  private record(keyPath: readonly string[], index: number): void {
    const line = this.lineAt(index);
    for (let n = 1; n <= keyPath.length; n++) {
      const id = pathId(keyPath.slice(0, n));
      if (!this.lines.has(id)) this.lines.set(id, line);
    }
  }

  private lineAt(index: number): number {
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.lineStarts[mid] <= index) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  }
}

function decodeBasic(raw: string): string {
  return raw.replace(/\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)/g, (_, escape: string) => {
    if (escape.length > 1) return String.fromCodePoint(parseInt(escape.slice(1), 16));
    const simple: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b', '"': '"', '\\': '\\' };
    return simple[escape] ?? escape;
  });
}

