/**
 * Prompt cells are edited as Markdown, `%%python` cells as Python, switching as the first
 * line changes, each with a small marker of its kind. JupyterLab gives every code cell the
 * kernel's one language (Markdown for CodeAct), so each cell's MIME type is set here and set
 * again whenever the notebook resets it.
 */
import { Cell, ICodeCellModel } from '@jupyterlab/cells';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { NotebookPanel } from '@jupyterlab/notebook';

import { cellKind, mimeTypeFor } from './cellkind';

const watched = new WeakSet<Cell>();

/**
 * Load both languages once, before any cell is switched. An editor loads the language of each
 * MIME type it is given and applies whichever load finishes last: while Markdown's first load
 * (the kernel's language, set by the notebook) is in flight, a cell switched to Python could
 * end up highlighted as Markdown.
 */
export function loadCellLanguages(languages: IEditorLanguageRegistry): Promise<unknown> {
  return Promise.all([languages.getLanguage(mimeTypeFor('prompt')), languages.getLanguage(mimeTypeFor('python'))]);
}

/** Keep every code cell of `panel` in its kind's mode while `active()` (a CodeAct kernel). */
export function followCellKinds(panel: NotebookPanel, active: () => boolean): void {
  const applyAll = () => panel.content.widgets.forEach(cell => watch(cell, active));
  panel.content.model?.cells.changed.connect(() => requestAnimationFrame(applyAll));
  panel.content.modelChanged.connect(applyAll);
  panel.sessionContext.kernelChanged.connect(applyAll);
  panel.sessionContext.statusChanged.connect(applyAll);
  void panel.sessionContext.ready.then(applyAll);
  applyAll();
}

function watch(cell: Cell, active: () => boolean): void {
  if (cell.model.type !== 'code') {
    return;
  }
  const model = cell.model as ICodeCellModel;
  const apply = () => {
    if (!active()) {
      delete cell.node.dataset.codeactKind;
      return;
    }
    const kind = cellKind(model.sharedModel.getSource());
    cell.node.dataset.codeactKind = kind;
    const mime = mimeTypeFor(kind);
    if (model.mimeType !== mime) {
      model.mimeType = mime;
    }
  };
  apply();
  if (watched.has(cell)) {
    return;
  }
  watched.add(cell);
  model.sharedModel.changed.connect(apply);
  model.mimeTypeChanged.connect(apply); // the notebook set the kernel's language again
}
