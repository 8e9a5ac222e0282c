/**
 * The protocol between CodeAct's kernel and this extension, declared once on this side
 * (codeact_kernel/comm.py declares the same messages on the kernel's side).
 *
 * The extension opens one comm on `TARGET` when it connects to a CodeAct kernel. The kernel
 * publishes its state over it and receives decisions and setting changes. An approval request
 * is display data of type `APPROVAL_MIME` in the cell's output, beside a text/markdown copy for
 * frontends without this extension; so is a call waiting inside a running program
 * (`CALL_MIME`: a tool marked approval="each-call"). Every message has a `kind` and an `id`.
 *
 * Version 2 added the call card, its actions and the runs' asked calls.
 */

export const TARGET = 'codeact';
export const VERSION = 2;
export const APPROVAL_MIME = 'application/vnd.codeact.approval+json';
export const CALL_MIME = 'application/vnd.codeact.call+json';

export type Phase =
  | 'idle'
  | 'asking-model'
  | 'awaiting-approval'
  | 'running'
  | 'awaiting-call'
  | 'repairing';

/** On a program's card: approve, approve-allow, reject. On a call's card: allow, allow-run, deny. */
export type Action = 'approve' | 'approve-allow' | 'reject' | 'allow' | 'allow-run' | 'deny';

// -- frontend to kernel -------------------------------------------------------------
export interface IHello {
  kind: 'hello';
  id: string;
  version: number;
}

export interface IDecide {
  kind: 'decide';
  id: string;
  /** The request the card shows. */
  request: string;
  action: Action;
  /** What runs: the model's program, or the person's edit (empty for a call). */
  program: string;
  /** Why, when rejecting or denying; it reaches the model's next request. */
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

/** A call that asked a person while the run went on. */
export interface ICallInfo {
  tool: string;
  /** The call as one line, long values collapsed. */
  call: string;
  line: number | null;
  /** allow, allow-run or deny. */
  decision: string;
  label: string;
  reason: string | null;
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
  calls: ICallInfo[];
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

// -- a call waiting inside a running program (display data) ----------------------------------
export interface ICallCardDecision {
  action: string;
  label: string;
  by: string;
  at: string;
  reason: string | null;
}

export interface ICallCard {
  version: number;
  request: string;
  tool: string;
  /** The call as one line, long values collapsed. */
  call: string;
  /** Pretty-printed JSON, long values collapsed. */
  arguments: string;
  line: number | null;
  decision: ICallCardDecision | null;
}

/** A fresh message id. */
export function newId(): string {
  return Math.random().toString(16).slice(2) + Date.now().toString(16);
}
