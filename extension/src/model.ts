/**
 * What the extension knows about one CodeAct kernel: kept here, shown by the views (card,
 * panel, status bar), changed only by the kernel's messages. Free of JupyterLab so that it is
 * unit-tested on its own: the comm is just a `send` function.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  Action,
  FrontendMessage,
  IResult,
  IRunInfo,
  ISettings,
  IToolInfo,
  KernelMessage,
  Phase,
  Settable,
  VERSION
} from './protocol';

export type Connection = 'connecting' | 'connected' | 'refused' | 'closed';

export class CodeActModel {
  constructor(send: (message: FrontendMessage) => void) {
    this._send = send;
  }

  connection: Connection = 'connecting';
  /** Why the kernel refused this extension (another protocol version), if it did. */
  refusal = '';
  settings: ISettings | null = null;
  tools: IToolInfo[] = [];
  runs: IRunInfo[] = [];
  phase: Phase = 'idle';
  pending: string | null = null;
  /** The answer to the panel's last setting change. */
  lastResult: IResult | null = null;

  /** Emitted after every change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get connected(): boolean {
    return this.connection === 'connected';
  }

  /** The first message to send: the comm's opening data. */
  static hello(): FrontendMessage {
    return { kind: 'hello', id: newId(), version: VERSION };
  }

  /** Apply a message from the kernel; anything unknown is ignored (a newer kernel's addition). */
  handle(message: KernelMessage | { kind?: unknown }): void {
    switch (message.kind) {
      case 'welcome': {
        const welcome = message as KernelMessage & { kind: 'welcome' };
        this.connection = welcome.accepted ? 'connected' : 'refused';
        this.refusal = welcome.reason;
        break;
      }
      case 'state': {
        const state = message as KernelMessage & { kind: 'state' };
        this.connection = 'connected';
        this.settings = state.settings;
        this.tools = state.tools;
        this.runs = state.runs;
        this.phase = state.phase;
        this.pending = state.pending;
        break;
      }
      case 'result':
        this.lastResult = message as IResult;
        break;
      default:
        return;
    }
    this._changed.emit();
  }

  /** The comm closed (kernel restarted or shut down): nothing is pending any more. */
  closed(): void {
    this.connection = 'closed';
    this.pending = null;
    this.phase = 'idle';
    this._changed.emit();
  }

  /** Whether a card for `request` may still be decided here. */
  canDecide(request: string): boolean {
    return this.connected && this.pending === request;
  }

  decide(request: string, action: Action, program: string, reason = ''): boolean {
    if (!this.canDecide(request)) {
      return false;
    }
    this._send({ kind: 'decide', id: newId(), request, action, program, reason });
    this.pending = null; // until the kernel says otherwise: a second click sends nothing
    this._changed.emit();
    return true;
  }

  /** Change a setting through the kernel's magic; the answer arrives as `lastResult`. */
  set(name: Settable, value: string): void {
    this._send({ kind: 'set', id: newId(), name, value });
  }

  private _send: (message: FrontendMessage) => void;
  private _changed = new Signal<this, void>(this);
}

/** A fresh message id. */
export function newId(): string {
  return Math.random().toString(16).slice(2) + Date.now().toString(16);
}
