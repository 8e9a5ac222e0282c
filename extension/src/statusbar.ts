/** The status bar item: model, policy, backend and the running cell's phase; a click opens the panel. */
import { Widget } from '@lumino/widgets';

import { Phase } from './protocol';
import { ICodeActTracker } from './tokens';

const PHASES: { [phase in Phase]: string } = {
  idle: 'idle',
  'asking-model': 'asking the model…',
  'awaiting-approval': 'awaiting approval',
  running: 'running…',
  'awaiting-call': 'a call awaits your decision',
  repairing: 'asking for a repair…'
};

export class CodeActStatus extends Widget {
  constructor(tracker: ICodeActTracker, open: () => void) {
    super();
    this._tracker = tracker;
    this.addClass('jp-CodeActStatus');
    this.node.title = 'CodeAct: open the panel';
    this.node.addEventListener('click', open);
    tracker.changed.connect(() => this.update(), this);
    this.update();
  }

  protected onUpdateRequest(): void {
    const model = this._tracker.current;
    const s = model?.settings;
    this.node.textContent = s
      ? `CodeAct · ${s.model} · ${s.approval} · ${s.sandbox} · ${PHASES[model!.phase] ?? model!.phase}`
      : '';
    this.node.dataset.phase = model?.phase ?? '';
    this.setHidden(!s);
  }

  private _tracker: ICodeActTracker;
}
