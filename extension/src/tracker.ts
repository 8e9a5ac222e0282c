/**
 * Connects each notebook to its CodeAct kernel: opens the protocol's comm when the kernel is
 * a CodeAct kernel (its kernel_info says implementation "codeact"), again after every restart
 * or kernel change, and keeps one CodeActModel per connection.
 */
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { CodeActModel } from './model';
import { KernelMessage as CodeActMessage, TARGET } from './protocol';
import { ICodeActTracker } from './tokens';

export class CodeActTracker implements ICodeActTracker {
  constructor(notebooks: INotebookTracker) {
    this._notebooks = notebooks;
    notebooks.widgetAdded.connect((_, panel) => this._watch(panel));
    notebooks.forEach(panel => this._watch(panel));
    notebooks.currentChanged.connect(() => this._changed.emit());
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get currentPanel(): NotebookPanel | null {
    return this._notebooks.currentWidget;
  }

  get current(): CodeActModel | null {
    const panel = this._notebooks.currentWidget;
    return panel ? this.modelFor(panel) : null;
  }

  modelFor(panel: NotebookPanel): CodeActModel | null {
    return this._models.get(panel) ?? null;
  }

  /** Whether this notebook's kernel is a CodeAct kernel (known once it answered kernel_info). */
  isCodeAct(panel: NotebookPanel): boolean {
    return this._models.has(panel);
  }

  private _watch(panel: NotebookPanel): void {
    const context = panel.sessionContext;
    const connect = () => void this._connect(panel, context.session?.kernel ?? null);
    context.kernelChanged.connect(connect);
    context.statusChanged.connect((_, status) => {
      if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
        this._models.get(panel)?.closed();
        this._kernels.delete(panel);
      } else if (status === 'idle' && !this._kernels.has(panel)) {
        connect();
      }
    });
    panel.disposed.connect(() => {
      this._models.delete(panel);
      this._kernels.delete(panel);
    });
    void context.ready.then(connect);
  }

  private async _connect(panel: NotebookPanel, kernel: Kernel.IKernelConnection | null): Promise<void> {
    if (!kernel || this._kernels.get(panel) === kernel) {
      return;
    }
    this._kernels.set(panel, kernel);
    const info = await kernel.info;
    if (info.implementation !== 'codeact' || this._kernels.get(panel) !== kernel || kernel.isDisposed) {
      if (info.implementation !== 'codeact') {
        this._models.delete(panel);
        this._changed.emit();
      }
      return;
    }
    const comm = kernel.createComm(TARGET);
    const model = new CodeActModel(message => {
      if (!comm.isDisposed) {
        comm.send(message as any);
      }
    });
    comm.onMsg = msg => model.handle(msg.content.data as unknown as CodeActMessage);
    comm.onClose = () => model.closed();
    model.changed.connect(() => {
      if (this._notebooks.currentWidget === panel) {
        this._changed.emit();
      }
    });
    this._models.set(panel, model);
    comm.open(CodeActModel.hello() as any);
    this._changed.emit();
  }

  private _notebooks: INotebookTracker;
  private _models = new Map<NotebookPanel, CodeActModel>();
  private _kernels = new Map<NotebookPanel, Kernel.IKernelConnection>();
  private _changed = new Signal<this, void>(this);
}
