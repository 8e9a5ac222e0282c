/**
 * What the two cards a person decides on have in common (a program's, card.ts; a call's inside
 * a running program, callcard.ts): they are pending while the kernel waits for exactly their
 * request, take the keyboard focus once when it starts waiting, and are what the commands
 * (and their shortcuts) act on when focused.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { CodeActModel } from './model';
import { Action } from './protocol';

const CARD = 'jp-CodeActCard';
const cards = new WeakMap<HTMLElement, DecisionCard<ICardData>>();

/** What both cards' display data have: the request, and the decision once made. */
export interface ICardData {
  request: string;
  decision: unknown | null;
}

export abstract class DecisionCard<T extends ICardData = ICardData> extends Widget implements IRenderMime.IRenderer {
  constructor(mimeType: string, model: () => CodeActModel | null) {
    super();
    this._mimeType = mimeType;
    this._model = model;
    this.addClass(CARD);
    this.node.tabIndex = 0;
    cards.set(this.node, this);
  }

  /** The card holding the keyboard focus, if any: what the commands act on. */
  static focused(): DecisionCard<ICardData> | null {
    const active = document.activeElement as HTMLElement | null;
    const node = active?.closest(`.${CARD}`) as HTMLElement | null;
    return node ? cards.get(node) ?? null : null;
  }

  /** Whether the kernel waits for this card's decision. */
  get pending(): boolean {
    const request = this.request;
    return !!request && !!this.connected()?.canDecide(request);
  }

  /** Approve the program (a call: allow it once); `allow`: its tools for the session (a call's tool for the run). */
  abstract approve(allow?: boolean): void;
  /** Edit the program (a call has nothing to edit). */
  abstract edit(): void;
  /** Ask for the reason, then reject (a call: deny). */
  abstract reject(): void;

  /** The kernel displayed the card, or updated it with the decision: show it as it now is. */
  async renderModel(mime: IRenderMime.IMimeModel): Promise<void> {
    const card = mime.data[this._mimeType] as unknown as T;
    const first = !this.card || this.card.request !== card.request;
    this.card = card;
    this.build(card);
    if (first) {
      this._focused = false; // a new request: it may take the focus again
    }
  }

  /** Build the card's content from its data (undecided, or the record). */
  protected abstract build(card: T): void;

  /** The request this card shows, while undecided; null once decided. */
  protected get request(): string | null {
    return this.card && !this.card.decision ? this.card.request : null;
  }

  protected onAfterAttach(): void {
    if (this.pending) {
      requestAnimationFrame(() => this.node.focus());
    }
  }

  dispose(): void {
    this._watched?.changed.disconnect(this.refresh, this);
    super.dispose();
  }

  protected connected(): CodeActModel | null {
    const model = this._model();
    if (model !== this._watched) {
      this._watched?.changed.disconnect(this.refresh, this);
      model?.changed.connect(this.refresh, this);
      this._watched = model;
    }
    return model;
  }

  /** Follow the model: pending or not; the kernel says the request is pending just after
   * displaying the card, so take the focus then, once, for the keyboard to decide at once. */
  protected refresh(): void {
    this.node.classList.toggle('jp-mod-pending', this.pending);
    if (this.pending && !this._focused && this.isAttached) {
      this._focused = true;
      requestAnimationFrame(() => this.node.focus());
    }
    if (this.status && this.request) {
      this.status.textContent = this.pending
        ? this.waitingText()
        : this.connected()?.connected
          ? 'Waiting for the kernel…'
          : 'Not decided: the kernel that asked is no longer connected.';
    }
  }

  /** What the status line says while the kernel waits for this card. */
  protected abstract waitingText(): string;

  /** Send the decision, if still pending; the card then waits for the kernel's record. */
  protected send(action: Action, program: string, reason: string): void {
    const request = this.request;
    const model = this.connected();
    if (!request || !model || !this.pending) {
      return;
    }
    if (model.decide(request, action, program, reason)) {
      this.node.classList.remove('jp-mod-pending', 'jp-mod-editing');
      if (this.status) {
        this.status.textContent = 'Sent; waiting for the kernel…';
      }
    }
  }

  /** The reason box, hidden until asked for: Enter calls `submit`, Escape hides it again. */
  protected reasonBox(placeholder: string, label: string, submit: () => void): HTMLElement {
    const box = element('div', 'jp-CodeActCard-reason');
    box.hidden = true;
    const input = element('input', 'jp-CodeActCard-reasonInput') as HTMLInputElement;
    input.placeholder = placeholder;
    input.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        event.preventDefault();
        event.stopPropagation();
        submit();
      } else if (event.key === 'Escape') {
        event.stopPropagation();
        box.hidden = true;
        this.node.focus();
      }
    });
    box.append(input, button(label, 'jp-mod-reject', `${label} with this reason`, submit));
    this.reason = input;
    return box;
  }

  /** Show the reason box, focused. */
  protected askReason(): void {
    if (this.pending && this.reason) {
      this.reason.parentElement!.hidden = false;
      this.reason.focus();
    }
  }

  protected card: T | null = null;
  protected reason: HTMLInputElement | null = null;
  protected status: HTMLElement | null = null;
  private _mimeType: string;
  private _model: () => CodeActModel | null;
  private _watched: CodeActModel | null = null;
  private _focused = false;
}

export function element(tag: string, className: string, text?: string): HTMLElement {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export function button(label: string, className: string, title: string, onClick: () => void): HTMLButtonElement {
  const node = element('button', `jp-CodeActCard-button jp-Button ${className}`.trim(), label) as HTMLButtonElement;
  node.title = title;
  node.addEventListener('click', onClick);
  return node;
}
