import { NotebookPanel } from '@jupyterlab/notebook';
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

import { CodeActModel } from './model';

/** The CodeAct model of each open notebook whose kernel is a CodeAct kernel. */
export interface ICodeActTracker {
  /** The model for this notebook's kernel, or null (not a CodeAct kernel, not connected yet). */
  modelFor(panel: NotebookPanel): CodeActModel | null;
  /** The current notebook's model. */
  readonly current: CodeActModel | null;
  /** The current notebook, for the views that link into it. */
  readonly currentPanel: NotebookPanel | null;
  /** The current notebook changed, or its model did (connected, new state). */
  readonly changed: ISignal<ICodeActTracker, void>;
}

export const ICodeActTracker = new Token<ICodeActTracker>(
  'codeact-kernel:tracker',
  'The CodeAct kernel connection of each notebook.'
);
