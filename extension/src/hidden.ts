/**
 * Characters a reader cannot see in a program: direction overrides and isolates, zero-width
 * and other format characters (Unicode Cf), control characters but the tab (Cc). With them,
 * code can read otherwise than it runs, so the card says which lines hold them, as the
 * kernel's own renders (views/render.py, `hidden_lines`) do for every other frontend.
 */
const HIDDEN = /(?!\t)[\p{Cf}\p{Cc}]/u;

/** The lines (from 1) holding such a character. */
export function hiddenLines(text: string): number[] {
  return text.split('\n').flatMap((line, index) => (HIDDEN.test(line) ? [index + 1] : []));
}

/** The card's warning about those lines (the kernel's words), or null when there are none. */
export function hiddenWarning(text: string): string | null {
  const lines = hiddenLines(text);
  if (!lines.length) {
    return null;
  }
  const which = lines.length > 1 ? `Lines ${lines.join(', ')} hold` : `Line ${lines[0]} holds`;
  return `${which} invisible or direction-changing characters: the code may read otherwise than it runs.`;
}
