/**
 * A CodeAct cell is a prompt (Markdown), Python (its first line is `%%python`, or it is `exit`
 * or `quit`) or magics: the kernel's own rules, read from the protocol (which is generated from
 * codeact_kernel/protocol.py), so the editor's mode and the marker always say what the kernel
 * will do with the cell.
 */
import { EXIT, MAGIC as MAGIC_PATTERN, PYTHON_MARKER } from './protocol';

export { PYTHON_MARKER };

export type CellKind = 'prompt' | 'python' | 'magic';

const MAGIC = new RegExp(MAGIC_PATTERN);

export function cellKind(source: string): CellKind {
  const lines = source
    .split('\n')
    .map(line => line.trim())
    .filter(line => line.length > 0);
  if (lines.length > 0 && lines[0] === PYTHON_MARKER) {
    return 'python';
  }
  if ((EXIT as readonly string[]).includes(source.trim())) {
    return 'python';
  }
  if (lines.length > 0 && lines[0].startsWith('%%') && MAGIC.test(lines[0])) {
    return 'magic';
  }
  if (lines.length > 0 && lines.every(line => MAGIC.test(line))) {
    return 'magic';
  }
  return 'prompt';
}

/**
 * The editor's MIME type for a kind: Markdown for prompts, IPython for the rest. Both as
 * JupyterLab's language registry names them (it knows no `text/markdown`: a cell of that type
 * gets no highlighting at all).
 */
export function mimeTypeFor(kind: CellKind): string {
  return kind === 'prompt' ? 'text/x-markdown' : 'text/x-ipython';
}

/** A prompt becomes Python (the marker added) and Python a prompt (the marker removed). */
export function toggledSource(source: string): string {
  if (cellKind(source) === 'python') {
    const start = source.indexOf(PYTHON_MARKER);
    const rest = source.slice(start + PYTHON_MARKER.length);
    return rest.startsWith('\n') ? rest.slice(1) : rest;
  }
  return `${PYTHON_MARKER}\n${source}`;
}
