/**
 * The protocol between CodeAct's kernel and this extension, declared once on this side
 * (codeact_kernel/comm.py declares the same messages on the kernel's side).
 *
 * The extension opens one comm on `TARGET` when it connects to a CodeAct kernel. The kernel
 * publishes its state over it and receives decisions and setting changes. An approval request
 * is display data of type `APPROVAL_MIME` in the cell's output, beside a text/markdown copy for
 * frontends without this extension. Every message has a `kind` and an `id`.
 */

export const TARGET = 'codeact';
export const VERSION = 1;
export const APPROVAL_MIME = 'application/vnd.codeact.approval+json';

export type Phase =
  | 'idle'
  | 'asking-model'
  | 'awaiting-approval'
  | 'running'
  | 'repairing';

export type Action = 'approve' | 'approve-allow' | 'reject';

// -- frontend to kernel -------------------------------------------------------------
export interface IHello {
  kind: 'hello';
  id: string;
  version: number;
}

export interface IDecide {
  kind: 'decide';
  id: string;
  /** The approval request the card shows. */
  request: string;
  action: Action;
  /** What runs: the model's program, or the person's edit. */
  program: string;
  /** Why, when rejecting; it reaches the model's next request. */
  reason: string;
}

export interface ISet {
  kind: 'set';
  id: string;
  name: 'approval' | 'model';
  value: string;
}

export interface IRefresh {
  kind: 'refresh';
  id: string;
}

export type FrontendMessage = IHello | IDecide | ISet | IRefresh;

// -- kernel to frontend -------------------------------------------------------------
export interface IWelcome {
  kind: 'welcome';
  id: string;
  version: number;
  accepted: boolean;
  reason: string;
}

export interface IToolInfo {
  name: string;
  signature: string;
  doc: string;
  /** Marked approval="always": every program that may call it asks a person. */
  always: boolean;
}

export interface ISettings {
  model: string;
  base_url: string;
  approval: string;
  approval_max: string | null;
  sandbox: string;
  sandbox_reason: string;
  limits: { [key: string]: unknown };
  mounts: string[];
  domains: string[];
}

export interface IRunInfo {
  prompt: string;
  cell_id: string | null;
  decision: string;
  by: string;
  sha256: string | null;
  tool_calls: number;
  tokens_in: number;
  tokens_out: number;
  seconds_model: number;
  seconds_sandbox: number;
  error: string | null;
}

export interface IState {
  kind: 'state';
  id: string;
  settings: ISettings;
  tools: IToolInfo[];
  runs: IRunInfo[];
  phase: Phase;
  /** The approval request awaiting a decision: only its card offers the actions. */
  pending: string | null;
}

export interface IResult {
  kind: 'result';
  id: string;
  /** The id of the `set` this answers. */
  request: string;
  ok: boolean;
  message: string;
}

export type KernelMessage = IWelcome | IState | IResult;

// -- the approval card (display data) ------------------------------------------------------
export interface ICardTool {
  name: string;
  always: boolean;
}

export interface ICardDecision {
  kind: string;
  label: string;
  /** "you" (a person, in the card) or a policy. */
  by: string;
  sha256: string | null;
  at: string;
  /** What ran (the edit, if edited). */
  program: string;
  reason: string | null;
  allow: string[];
}

export interface IApprovalCard {
  version: number;
  request: string;
  program: string;
  tools: ICardTool[];
  /** Some call_tool's name is chosen at run time. */
  dynamic: boolean;
  /** Tools a person may allow for the session along with this approval. */
  offer: string[];
  decision: ICardDecision | null;
}

/** A fresh message id. */
export function newId(): string {
  return Math.random().toString(16).slice(2) + Date.now().toString(16);
}
