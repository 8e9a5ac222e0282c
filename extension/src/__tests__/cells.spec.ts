import { cellKind, mimeTypeFor, toggledSource } from '../cellkind';
import { lineDiff, unified } from '../diff';
import { hiddenLines, hiddenWarning } from '../hidden';

describe('cellKind', () => {
  it('reads a cell as the kernel routes it', () => {
    expect(cellKind('What is the weather in Seattle?')).toBe('prompt');
    expect(cellKind('%%python\nx = [1, 2]')).toBe('python');
    expect(cellKind('  \n%%python\nx = 1')).toBe('python');
    expect(cellKind('%model gpt-4o\n%approval auto')).toBe('magic');
    expect(cellKind('%50 of them are late: why?')).toBe('prompt');
    expect(cellKind('exit')).toBe('python');
    expect(cellKind(' quit() ')).toBe('python');
    expect(cellKind('exit the loop early when it finds one')).toBe('prompt');
  });

  it('gives prompts Markdown and Python cells IPython', () => {
    expect(mimeTypeFor('prompt')).toBe('text/x-markdown');
    expect(mimeTypeFor('python')).toBe('text/x-ipython');
  });

  it('toggles a prompt to Python and back to the same text', () => {
    const prompt = 'Sum the orders';
    const python = toggledSource(prompt);
    expect(cellKind(python)).toBe('python');
    expect(toggledSource(python)).toBe(prompt);
  });
});

describe('lineDiff', () => {
  it('marks the lines an edit added and removed', () => {
    const lines = lineDiff('a = 1\nprint(a)\n', 'a = 2\nprint(a)\n');
    expect(unified(lines)).toBe('-a = 1\n+a = 2\n print(a)');
  });

  it('is all unchanged for the same text', () => {
    expect(lineDiff('x\ny', 'x\ny').every(line => line.kind === 'same')).toBe(true);
  });
});

describe('hiddenWarning', () => {
  it('names the lines holding characters a reader cannot see', () => {
    const trojan = 'ok = True\naccess = "user\u202e \u2066# admin\u2069 \u2066"\nzero\u200bwidth = 1\n';
    expect(hiddenLines(trojan)).toEqual([2, 3]);
    expect(hiddenWarning(trojan)).toBe(
      'Lines 2, 3 hold invisible or direction-changing characters: the code may read otherwise than it runs.'
    );
    expect(hiddenWarning('x = 1\n\u0007')).toMatch(/^Line 2 holds /);
  });

  it('says nothing of tabs, accents or other scripts', () => {
    expect(hiddenWarning('if x:\n\tprint("café", "שלום", "日本")\n')).toBeNull();
  });
});
