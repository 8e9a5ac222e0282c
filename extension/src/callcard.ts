/**
 * The call card: a running program waits inside `call_tool` for a tool marked
 * approval="each-call". It shows the tool, the line of the program that called it and the
 * arguments (long values collapsed by the kernel), under the output the program printed so
 * far; Allow (Ctrl/Cmd-Enter), Allow the tool for the rest of this run (Ctrl/Cmd-Shift-Enter)
 * or Deny with a reason (R, then Enter). Once decided, the card is the record.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { button, DecisionCard, element } from './decisioncard';
import { CodeActModel } from './model';
import { CALL_MIME, ICallCard } from './protocol';

export class CallCard extends DecisionCard<ICallCard> {
  constructor(model: () => CodeActModel | null) {
    super(CALL_MIME, model);
    this.addClass('jp-CodeActCallCard');
  }

  approve(allow = false): void {
    this.send(allow ? 'allow-run' : 'allow', '', '');
  }

  edit(): void {
    // Nothing to edit: the call is the program's.
  }

  reject(): void {
    this.askReason();
  }

  protected waitingText(): string {
    return 'The program waits · Ctrl/Cmd-Enter allows, Ctrl/Cmd-Shift-Enter allows for this run, R denies.';
  }

  protected build(card: ICallCard): void {
    this.node.replaceChildren();
    this.node.classList.toggle('jp-mod-decided', !!card.decision);
    const header = element('div', 'jp-CodeActCard-header');
    header.append(
      element('span', 'jp-CodeActCard-title', card.decision ? 'Call' : 'The program wants to call'),
      element('span', 'jp-CodeActCard-chip', card.tool),
      element('span', 'jp-CodeActCard-calls', card.line !== null ? `at line ${card.line}` : '')
    );
    this.node.append(header, element('pre', 'jp-CodeActCallCard-arguments', card.arguments));

    const decision = card.decision;
    if (decision) {
      const parts = [decision.label, new Date(decision.at).toLocaleTimeString()];
      if (decision.reason) {
        parts.push(`reason: ${decision.reason}`);
      }
      const record = element('div', 'jp-CodeActCard-record', parts.join(' · '));
      record.classList.add(decision.action === 'deny' ? 'jp-mod-rejected' : 'jp-mod-approved');
      this.node.append(record);
      this.status = null;
      this.reason = null;
      this.refresh();
      return;
    }
    const actions = element('div', 'jp-CodeActCard-actions');
    actions.append(
      button('Allow', 'jp-mod-accept', 'Run this call (Ctrl/Cmd-Enter)', () => this.approve()),
      button(
        `Allow ${card.tool} for this run`,
        '',
        `Run this call and every later call to ${card.tool} in this run (Ctrl/Cmd-Shift-Enter)`,
        () => this.approve(true)
      ),
      button('Deny', 'jp-mod-reject', 'The call raises ToolError in the program, with your reason (R)', () =>
        this.reject()
      )
    );
    this.node.append(
      actions,
      this.reasonBox('Why not? The program and the model see it. Enter denies, Escape cancels.', 'Deny', () =>
        this.send('deny', '', this.reason?.value.trim() ?? '')
      )
    );
    this.status = element('div', 'jp-CodeActCard-status', '');
    this.node.append(this.status);
    this.refresh();
  }
}

/** The renderer factory for one notebook (its cards talk to that notebook's kernel). */
export function callCardFactory(model: () => CodeActModel | null): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [CALL_MIME],
    defaultRank: 10, // before text/markdown (60), which carries the same for other frontends
    createRenderer: () => new CallCard(model)
  };
}
