/** The person's edit against the model's program, line by line, for the card. */
import { diffLines } from 'diff';

export interface IDiffLine {
  kind: 'same' | 'added' | 'removed';
  text: string;
}

export function lineDiff(before: string, after: string): IDiffLine[] {
  const lines: IDiffLine[] = [];
  for (const part of diffLines(before, after)) {
    const kind = part.added ? 'added' : part.removed ? 'removed' : 'same';
    const texts = part.value.replace(/\n$/, '').split('\n');
    for (const text of texts) {
      lines.push({ kind, text });
    }
  }
  return lines;
}

/** The diff as unified-diff text (`+`, `-`, ` ` prefixes). */
export function unified(lines: IDiffLine[]): string {
  const mark = { same: ' ', added: '+', removed: '-' };
  return lines.map(line => mark[line.kind] + line.text).join('\n');
}
