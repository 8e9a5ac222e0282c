/**
 * The CodeAct panel: the current notebook's model and server, approval policy, sandbox and
 * why, limits, mounts, allowed domains, the registered tools, and this session's runs (each
 * links to its cell). It reads the tracker's current model; changing the policy or the model
 * sends a `set`, which the kernel applies with the same magic a person would type. The
 * policies offered, and which settings may change, are the kernel's (its state says).
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { CodeActModel } from './model';
import { ICodeActTracker } from './tokens';

export class CodeActPanel extends Widget {
  constructor(tracker: ICodeActTracker) {
    super();
    this._tracker = tracker;
    this.id = 'codeact-panel';
    this.addClass('jp-CodeActPanel');
    this.title.caption = 'CodeAct';
    tracker.changed.connect(() => this.update(), this);
  }

  protected onAfterShow(): void {
    this.update();
  }

  protected onUpdateRequest(): void {
    const model = this._tracker.current;
    this.node.replaceChildren(section('h2', 'CodeAct'));
    if (!model) {
      this.node.append(paragraph('The current notebook does not run a CodeAct kernel.'));
      return;
    }
    if (model.connection === 'refused') {
      this.node.append(paragraph(`The kernel refused this extension: ${model.refusal}`));
      return;
    }
    if (!model.settings) {
      this.node.append(paragraph(model.connection === 'closed' ? 'The kernel is not connected.' : 'Connecting…'));
      return;
    }
    this._settings(model);
    this._tools(model);
    this._runs(model, this._tracker.currentPanel);
  }

  private _settings(model: CodeActModel): void {
    const s = model.settings!;
    const table = element('table', 'jp-CodeActPanel-settings');
    const policy = document.createElement('select');
    policy.className = 'jp-CodeActPanel-policy';
    for (const name of s.policies) {
      const option = document.createElement('option');
      option.value = option.textContent = name;
      option.selected = name === s.approval;
      policy.append(option);
    }
    policy.disabled = !s.settable.includes('approval');
    policy.addEventListener('change', () => model.set('approval', policy.value));
    const modelName = document.createElement('input');
    modelName.className = 'jp-CodeActPanel-model';
    modelName.value = s.model;
    modelName.disabled = !s.settable.includes('model');
    modelName.addEventListener('keydown', event => {
      if (event.key === 'Enter' && modelName.value.trim()) {
        model.set('model', modelName.value.trim());
      }
    });
    const limits = Object.entries(s.limits)
      .map(([key, value]) => `${key} ${value}`)
      .join(', ');
    row(table, 'model', modelName);
    row(table, 'server', text(s.base_url));
    row(table, 'approval', policy, s.approval_max ? text(` (at most ${s.approval_max})`) : null);
    row(table, 'sandbox', text(s.sandbox), element('div', 'jp-CodeActPanel-why', s.sandbox_reason));
    row(table, 'limits', text(limits));
    row(table, 'mounts', text(s.mounts.join('; ') || 'none'));
    row(table, 'network', text(s.domains.join(', ') || 'none'));
    this.node.append(section('h3', 'Settings'), table);
    if (model.lastResult) {
      const result = paragraph(model.lastResult.message);
      result.className = model.lastResult.ok ? 'jp-CodeActPanel-result' : 'jp-CodeActPanel-result jp-mod-error';
      this.node.append(result);
    }
  }

  private _tools(model: CodeActModel): void {
    const list = element('ul', 'jp-CodeActPanel-tools');
    for (const tool of model.tools) {
      const item = element('li', 'jp-CodeActPanel-tool');
      const name = element('code', '', `${tool.name}${tool.signature}`);
      item.append(name);
      if (tool.always) {
        item.append(element('span', 'jp-CodeActPanel-always', 'always asks'));
      }
      if (tool.doc) {
        item.append(element('div', 'jp-CodeActPanel-doc', tool.doc));
      }
      list.append(item);
    }
    this.node.append(section('h3', `Tools (${model.tools.length})`));
    this.node.append(model.tools.length ? list : paragraph('No tools yet: define one in a %%python cell with @tool.'));
  }

  private _runs(model: CodeActModel, panel: NotebookPanel | null): void {
    this.node.append(section('h3', `Runs (${model.runs.length})`));
    if (!model.runs.length) {
      this.node.append(paragraph('No prompt cell has run in this kernel yet.'));
      return;
    }
    const list = element('ol', 'jp-CodeActPanel-runs');
    for (const run of [...model.runs].reverse()) {
      const item = element('li', 'jp-CodeActPanel-run');
      const prompt = element('a', 'jp-CodeActPanel-prompt', run.prompt.length > 80 ? run.prompt.slice(0, 79) + '…' : run.prompt);
      prompt.title = 'Show the cell';
      prompt.addEventListener('click', () => panel && run.cell_id && showCell(panel, run.cell_id));
      const facts = [
        `${run.decision} (${run.by})`,
        run.sha256 ? `sha256 ${run.sha256.slice(0, 12)}` : '',
        `${run.tool_calls} tool call${run.tool_calls === 1 ? '' : 's'}`,
        `${run.tokens_in} in / ${run.tokens_out} out tokens`,
        `model ${run.seconds_model.toFixed(2)} s, sandbox ${(run.seconds_sandbox * 1000).toFixed(0)} ms`
      ].filter(Boolean);
      item.append(prompt, element('div', 'jp-CodeActPanel-facts', facts.join(' · ')));
      if (run.calls.length) {
        const asked = element('ul', 'jp-CodeActPanel-calls');
        for (const call of run.calls) {
          const line = call.line !== null ? ` (line ${call.line})` : '';
          const text = `${call.label}: ${call.call}${line}${call.reason ? ` · ${call.reason}` : ''}`;
          const entry = element('li', 'jp-CodeActPanel-call', text);
          entry.classList.add(call.decision === 'deny' ? 'jp-mod-denied' : 'jp-mod-allowed');
          asked.append(entry);
        }
        item.append(asked);
      }
      if (run.error) {
        item.append(element('div', 'jp-CodeActPanel-error', run.error));
      }
      list.append(item);
    }
    this.node.append(list);
  }

  private _tracker: ICodeActTracker;
}

function showCell(panel: NotebookPanel, cellId: string): void {
  const notebook = panel.content;
  const index = notebook.widgets.findIndex(cell => cell.model.id === cellId);
  if (index >= 0) {
    notebook.activeCellIndex = index;
    void notebook.scrollToItem(index);
  }
}

function element(tag: string, className: string, content?: string): HTMLElement {
  const node = document.createElement(tag);
  node.className = className;
  if (content !== undefined) {
    node.textContent = content;
  }
  return node;
}

function section(tag: string, title: string): HTMLElement {
  return element(tag, 'jp-CodeActPanel-heading', title);
}

function paragraph(content: string): HTMLElement {
  return element('p', 'jp-CodeActPanel-note', content);
}

function text(content: string): HTMLElement {
  return element('span', '', content);
}

function row(table: HTMLElement, label: string, ...cells: (HTMLElement | null)[]): void {
  const tr = document.createElement('tr');
  const th = element('th', '', label);
  const td = document.createElement('td');
  td.append(...cells.filter((cell): cell is HTMLElement => cell !== null));
  tr.append(th, td);
  table.append(tr);
}
