/**
 * The approval card: the program once, in a read-only CodeMirror editor of the notebook's
 * theme, the tools it calls as chips, and Approve / Edit / Reject. Edit makes the same editor
 * editable, with the diff against the model's version shown before approving. Once decided
 * (the kernel updates the display data) the card is the record: decision, by whom, SHA-256,
 * time, the edit's diff collapsed.
 */
import { CodeEditor, IEditorServices } from '@jupyterlab/codeeditor';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { button, DecisionCard, element } from './decisioncard';
import { lineDiff, unified } from './diff';
import { hiddenWarning } from './hidden';
import { CodeActModel } from './model';
import { APPROVAL_MIME, IApprovalCard } from './protocol';

export class ApprovalCard extends DecisionCard<IApprovalCard> {
  constructor(editors: IEditorServices, model: () => CodeActModel | null) {
    super(APPROVAL_MIME, model);
    this._editors = editors;
  }

  approve(allow = false): void {
    this._send(allow ? 'approve-allow' : 'approve');
  }

  edit(): void {
    if (!this.pending || !this._editor) {
      return;
    }
    this._editing = true;
    this._editor.setOption('readOnly', false);
    this.node.classList.add('jp-mod-editing');
    this._editor.focus();
  }

  /** Show the reason box (focused); Enter in it rejects. */
  reject(): void {
    this.askReason();
  }

  dispose(): void {
    this._editor?.dispose();
    super.dispose();
  }

  protected waitingText(): string {
    return 'Nothing runs until you decide · Ctrl/Cmd-Enter approves, E edits, R rejects.';
  }

  private _send(action: 'approve' | 'approve-allow' | 'reject'): void {
    const card = this.card;
    if (!card || !this.pending) {
      return;
    }
    const program = this._editing && this._editor ? this._editor.model.sharedModel.getSource() : card.program;
    this._editor?.setOption('readOnly', true);
    this.send(action, program, action === 'reject' ? this.reason?.value.trim() ?? '' : '');
  }

  protected build(card: IApprovalCard): void {
    this._editor?.dispose();
    this._editor = null;
    this._editing = false;
    this.node.replaceChildren();
    this.node.classList.toggle('jp-mod-decided', !!card.decision);
    const decision = card.decision;

    const header = element('div', 'jp-CodeActCard-header');
    header.append(element('span', 'jp-CodeActCard-title', decision ? 'Program' : 'Run this program?'));
    const calls = element('span', 'jp-CodeActCard-calls', card.tools.length || card.dynamic ? 'calls' : 'calls no tools');
    header.append(calls);
    for (const tool of card.tools) {
      const chip = element('span', 'jp-CodeActCard-chip', tool.name);
      if (tool.always) {
        chip.classList.add('jp-mod-always');
        chip.title = `${tool.name} is marked approval="always"`;
      }
      header.append(chip);
    }
    if (card.dynamic) {
      const chip = element('span', 'jp-CodeActCard-chip jp-mod-dynamic', 'tools chosen at run time');
      chip.title = 'Some call_tool names are computed while the program runs';
      header.append(chip);
    }
    this.node.append(header);
    // Where it runs and what it starts with: text the kernel described (types and shapes, no values).
    const guest = card.guest === 'science' ? 'the scientific guest (numpy, pandas & co.)' : 'the standard guest';
    this.node.append(
      element('div', 'jp-CodeActCard-guest', `Runs in ${guest}${card.guest_reason ? `: ${card.guest_reason}` : ''}`)
    );
    if (card.inputs.length) {
      const inputs = element('ul', 'jp-CodeActCard-inputs');
      for (const input of card.inputs) {
        const item = element('li', 'jp-CodeActCard-input');
        const origin = input.origin === 'shared' ? 'shared' : 'from an earlier program';
        item.append(element('code', '', input.name), document.createTextNode(` (${origin}): ${input.description}`));
        inputs.append(item);
      }
      this.node.append(element('div', 'jp-CodeActCard-startsWith', 'Starts with:'), inputs);
    }

    const host = element('div', 'jp-CodeActCard-editor');
    this.node.append(host);
    const shown = decision ? decision.program : card.program;
    const source = new CodeEditor.Model({ mimeType: 'text/x-python' });
    source.sharedModel.setSource(shown);
    this._editor = this._editors.factoryService.newInlineEditor({
      host,
      model: source,
      config: { readOnly: true, lineNumbers: true }
    });
    // What the editor cannot show a reader (a direction override, a zero-width character), said.
    const warning = element('div', 'jp-CodeActCard-warning', '');
    const showWarning = (text: string) => {
      const said = hiddenWarning(text);
      warning.textContent = said ?? '';
      warning.hidden = !said;
    };
    showWarning(shown);
    this.node.append(warning);

    const diff = element('details', 'jp-CodeActCard-diff') as HTMLDetailsElement;
    const diffText = element('pre', 'jp-CodeActCard-diffText');
    diff.append(element('summary', '', "Your edit against the model's program"), diffText);
    const showDiff = (text: string) => {
      const lines = lineDiff(card.program, text);
      diffText.replaceChildren(
        ...lines.map(line => element('div', `jp-CodeActCard-diff-${line.kind}`, unified([line])))
      );
      diff.hidden = text === card.program;
    };
    showDiff(shown);
    this.node.append(diff);

    if (decision) {
      diff.open = false; // collapsed in the record
      const when = new Date(decision.at).toLocaleTimeString();
      const parts = [decision.label, `by ${decision.by}`, when];
      if (decision.sha256) {
        parts.push(`sha256 ${decision.sha256.slice(0, 16)}`);
      }
      if (decision.allow.length) {
        parts.push(`allowed for this session: ${decision.allow.join(', ')}`);
      }
      if (decision.reason) {
        parts.push(`reason: ${decision.reason}`);
      }
      const record = element('div', 'jp-CodeActCard-record', parts.join(' · '));
      record.classList.add(decision.kind === 'rejected' ? 'jp-mod-rejected' : 'jp-mod-approved');
      if (decision.sha256) {
        record.title = `sha256 ${decision.sha256}`;
      }
      this.node.append(record);
      this.status = null;
      this.reason = null;
      this.refresh();
      return;
    }

    diff.open = true; // while editing, the diff is visible before approving
    source.sharedModel.changed.connect(() => {
      showDiff(source.sharedModel.getSource());
      showWarning(source.sharedModel.getSource());
    });

    const actions = element('div', 'jp-CodeActCard-actions');
    actions.append(
      button('Approve', 'jp-mod-accept', 'Run this program in the sandbox (Ctrl/Cmd-Enter)', () => this.approve())
    );
    if (card.offer.length) {
      actions.append(
        button(
          `Approve and allow ${card.offer.join(', ')}`,
          '',
          `Run this, and later programs that call only ${card.offer.join(', ')}, without asking (this session; Ctrl/Cmd-Shift-Enter)`,
          () => this.approve(true)
        )
      );
    }
    actions.append(button('Edit', '', 'Edit the program before running it (E)', () => this.edit()));
    actions.append(button('Reject', 'jp-mod-reject', 'Do not run it; say why (R)', () => this.reject()));
    this.node.append(actions);

    this.node.append(
      this.reasonBox('Why not? Sent to the model. Enter rejects, Escape cancels.', 'Reject', () => this._send('reject'))
    );

    this.status = element('div', 'jp-CodeActCard-status', '');
    this.node.append(this.status);
    this.refresh();
  }

  private _editors: IEditorServices;
  private _editor: CodeEditor.IEditor | null = null;
  private _editing = false;
}

/** The renderer factory for one notebook (its cards talk to that notebook's kernel). */
export function cardFactory(editors: IEditorServices, model: () => CodeActModel | null): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [APPROVAL_MIME],
    defaultRank: 10, // before text/markdown (60), which carries the same for other frontends
    createRenderer: () => new ApprovalCard(editors, model)
  };
}
