import { CodeActModel } from '../model';
import { FrontendMessage, IState, VERSION } from '../protocol';

function state(pending: string | null, phase: IState['phase'] = 'awaiting-approval'): IState {
  return {
    kind: 'state',
    id: 's1',
    settings: {
      model: 'gpt-test',
      base_url: 'http://127.0.0.1:1/v1',
      approval: 'ask',
      approval_max: null,
      policies: ['reject', 'ask', 'recorded', 'auto'],
      settable: ['approval', 'model'],
      sandbox: 'wasmtime',
      sandbox_reason: 'chosen when the first program runs',
      limits: { timeout_s: 30 },
      mounts: [],
      domains: []
    },
    tools: [{ name: 'send_email', signature: '(to: str)', doc: 'Send one.', always: true }],
    runs: [],
    phase,
    pending
  };
}

describe('CodeActModel', () => {
  let sent: FrontendMessage[];
  let model: CodeActModel;

  beforeEach(() => {
    sent = [];
    model = new CodeActModel(message => sent.push(message));
  });

  it('opens with a hello of this protocol version', () => {
    const hello = CodeActModel.hello();
    expect(hello.kind).toBe('hello');
    expect((hello as { version: number }).version).toBe(VERSION);
  });

  it('is connected by an accepting welcome and refused by another', () => {
    model.handle({ kind: 'welcome', id: 'w', version: VERSION, accepted: true, reason: '' });
    expect(model.connected).toBe(true);
    const other = new CodeActModel(() => undefined);
    other.handle({ kind: 'welcome', id: 'w', version: 2, accepted: false, reason: 'protocol 1 vs 2' });
    expect(other.connection).toBe('refused');
    expect(other.refusal).toContain('protocol');
  });

  it('takes the whole state from a state message and says it changed', () => {
    let changes = 0;
    model.changed.connect(() => changes++);
    model.handle(state('r1'));
    expect(changes).toBe(1);
    expect(model.settings?.model).toBe('gpt-test');
    expect(model.tools[0].always).toBe(true);
    expect(model.phase).toBe('awaiting-approval');
  });

  it('ignores messages of kinds it does not know', () => {
    let changes = 0;
    model.changed.connect(() => changes++);
    model.handle({ kind: 'from-a-newer-kernel' });
    expect(changes).toBe(0);
  });

  it('sends a decision only for the pending request, and only once', () => {
    model.handle(state('r1'));
    expect(model.decide('old', 'approve', 'print(1)')).toBe(false);
    expect(model.decide('r1', 'reject', 'print(1)', 'too risky')).toBe(true);
    expect(model.decide('r1', 'approve', 'print(1)')).toBe(false);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ kind: 'decide', request: 'r1', action: 'reject', reason: 'too risky' });
  });

  it('decides a call waiting in a running program, and keeps the runs\' asked calls', () => {
    const running = state('c1', 'awaiting-call');
    running.runs = [
      {
        prompt: 'Email the team',
        cell_id: 'x',
        decision: 'auto',
        by: 'policy',
        sha256: 'ab',
        tool_calls: 3,
        tokens_in: 1,
        tokens_out: 1,
        seconds_model: 0,
        seconds_sandbox: 0,
        error: null,
        calls: [
          { tool: 'send_email', call: "send_email(to='bob')", line: 4, decision: 'deny', label: 'Denied by you', reason: 'no' }
        ]
      }
    ];
    model.handle(running);
    expect(model.phase).toBe('awaiting-call');
    expect(model.runs[0].calls[0].reason).toBe('no');
    expect(model.decide('c1', 'allow-run', '')).toBe(true);
    expect(sent[0]).toMatchObject({ kind: 'decide', request: 'c1', action: 'allow-run', program: '' });
    expect(model.canDecide('c1')).toBe(false);
  });

  it('forgets the pending request when the comm closes', () => {
    model.handle(state('r1'));
    model.closed();
    expect(model.canDecide('r1')).toBe(false);
    expect(model.phase).toBe('idle');
  });

  it('asks for a setting change with a set message', () => {
    model.set('approval', 'auto');
    expect(sent[0]).toMatchObject({ kind: 'set', name: 'approval', value: 'auto' });
    model.handle({ kind: 'result', id: 'x', request: sent[0].id, ok: false, message: 'not allowed here' });
    expect(model.lastResult?.ok).toBe(false);
  });
});
