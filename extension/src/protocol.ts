// Generated from codeact_kernel/protocol.py by `python -m codeact_kernel.protocol`: do not edit.
// tests/test_protocol_types.py fails when the two differ.

export const TARGET = 'codeact';
export const VERSION = 3;
export const APPROVAL_MIME = 'application/vnd.codeact.approval+json';
export const CALL_MIME = 'application/vnd.codeact.call+json';
/** A cell whose first line is this is ordinary Python in the kernel's namespace. */
export const PYTHON_MARKER = '%%python';
/** A line that is a magic: a cell of only such lines (or starting with a cell magic) is magics. */
export const MAGIC = '^%{1,2}[A-Za-z_]';
/** Cells that ask a console to close, as in IPython: Python, not prompts. */
export const EXIT = ['exit', 'quit', 'exit()', 'quit()'] as const;

export type Phase = 'idle' | 'asking-model' | 'awaiting-approval' | 'running' | 'awaiting-call' | 'repairing';

/** What a person does on a program's card. */
export type ProgramAction = 'approve' | 'approve-allow' | 'reject';

/** What a person does on a call's card. */
export type CallAction = 'allow' | 'allow-run' | 'deny';

export type Action = 'approve' | 'approve-allow' | 'reject' | 'allow' | 'allow-run' | 'deny';

/** What became of a program: a person approved it (as it was, or edited), rejected it, or a policy ran it unasked (auto, recorded, a session allowance) or refused it (reject). */
export type DecisionKind = 'approved' | 'edited' | 'rejected' | 'auto' | 'recorded' | 'recorded-unasked' | 'allowed' | 'rejected-by-policy';

/** What became of a turn: a decision on its program, or "no-code" (the reply had none). */
export type Outcome = 'approved' | 'edited' | 'rejected' | 'auto' | 'recorded' | 'recorded-unasked' | 'allowed' | 'rejected-by-policy' | 'no-code';

/** Where a person decided: the extension's card, ipywidgets, or a console prompt. */
export type Approver = 'extension' | 'widgets' | 'stdin';

/** What the extension's panel may change, through the magic a person would type. */
export type Settable = 'approval' | 'model';

/** The comm_open data. */
export interface IHello {
  kind: 'hello';
  id: string;
  version: number;
}

/** A person's decision on the card of request `request`. */
export interface IDecide {
  kind: 'decide';
  id: string;
  request: string;
  action: Action;
  /** What runs: the model's program, or the person's edit (empty for a call). */
  program: string;
  /** Why, when rejecting or denying; it reaches the model's next request. */
  reason: string;
}

/** Change a setting through the same code path as its magic (`%approval`, `%model`). */
export interface ISet {
  kind: 'set';
  id: string;
  name: Settable;
  value: string;
}

/** Ask for the state again. */
export interface IRefresh {
  kind: 'refresh';
  id: string;
}

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
  /** The approval policies the kernel knows, most careful first. */
  policies: string[];
  settable: Settable[];
  /** The backend in use, or the one configured before the first run. */
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
  decision: CallAction;
  label: string;
  reason: string | null;
}

export interface IRunInfo {
  prompt: string;
  cell_id: string | null;
  decision: Outcome;
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
  /** The approval request awaiting a decision, if any: only its card offers the actions. */
  pending: string | null;
}

/** The answer to a `set`: `ok`, and what the magic printed. */
export interface IResult {
  kind: 'result';
  id: string;
  /** The id of the `set` this answers. */
  request: string;
  ok: boolean;
  message: string;
}

export interface ICardTool {
  name: string;
  always: boolean;
}

/** A value the program starts with: shared from the notebook, or left by an earlier program. */
export interface ICardInput {
  name: string;
  origin: 'shared' | 'carried';
  /** Type, shape and columns, never values. */
  description: string;
}

export interface ICardDecision {
  kind: DecisionKind;
  label: string;
  /** "you" (a person, in the card) or the policy's name. */
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
  /** Tools a person may allow for the session with this approval ("Approve and allow"). */
  offer: string[];
  /** The guest it runs in: standard, or science (numpy, pandas, scipy, scikit-learn, statsmodels, matplotlib). */
  guest: string;
  guest_reason: string;
  inputs: ICardInput[];
  decision: ICardDecision | null;
}

export interface ICallCardDecision {
  action: CallAction;
  label: string;
  by: string;
  at: string;
  reason: string | null;
}

/** A call waiting inside a running program, with its arguments; `decision` once decided. */
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

export type FrontendMessage = IHello | IDecide | ISet | IRefresh;

export type KernelMessage = IWelcome | IState | IResult;
