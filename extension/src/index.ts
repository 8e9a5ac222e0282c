/** CodeAct's JupyterLab and Notebook 7 extension: wires the plugins, nothing else. */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IEditorServices } from '@jupyterlab/codeeditor';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { callCardFactory } from './callcard';
import { cardFactory } from './card';
import { followCellKinds, loadCellLanguages } from './cells';
import { addCardCommands, addCellCommands, CommandIDs } from './commands';
import { CodeActPanel } from './panel';
import { CodeActStatus } from './statusbar';
import { ICodeActTracker } from './tokens';
import { CodeActTracker } from './tracker';

const tracker: JupyterFrontEndPlugin<ICodeActTracker> = {
  id: 'codeact-kernel:tracker',
  description: 'Connects each notebook to its CodeAct kernel over the protocol comm.',
  autoStart: true,
  requires: [INotebookTracker],
  provides: ICodeActTracker,
  activate: (_app: JupyterFrontEnd, notebooks: INotebookTracker) => new CodeActTracker(notebooks)
};

const card: JupyterFrontEndPlugin<void> = {
  id: 'codeact-kernel:card',
  description: 'The approval cards in the cell output (a program, a call it makes), and their keyboard commands.',
  autoStart: true,
  requires: [INotebookTracker, ICodeActTracker, IEditorServices],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    codeact: ICodeActTracker,
    editors: IEditorServices,
    palette: ICommandPalette | null
  ) => {
    const addTo = (panel: NotebookPanel) => {
      const model = () => codeact.modelFor(panel);
      panel.content.rendermime.addFactory(cardFactory(editors, model));
      panel.content.rendermime.addFactory(callCardFactory(model));
    };
    notebooks.forEach(addTo);
    notebooks.widgetAdded.connect((_, panel) => addTo(panel));
    addCardCommands(app.commands);
    for (const command of [CommandIDs.approve, CommandIDs.approveAllow, CommandIDs.edit, CommandIDs.reject]) {
      palette?.addItem({ command, category: 'CodeAct' });
    }
  }
};

const cells: JupyterFrontEndPlugin<void> = {
  id: 'codeact-kernel:cells',
  description: 'Prompt cells in Markdown mode, %%python cells in Python mode, and the command between them.',
  autoStart: true,
  requires: [INotebookTracker, ICodeActTracker, IEditorLanguageRegistry],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    codeact: CodeActTracker,
    languages: IEditorLanguageRegistry,
    palette: ICommandPalette | null
  ) => {
    const follow = (panel: NotebookPanel) => followCellKinds(panel, () => codeact.isCodeAct(panel));
    void loadCellLanguages(languages).then(() => {
      notebooks.forEach(follow);
      notebooks.widgetAdded.connect((_, panel) => follow(panel));
    });
    addCellCommands(app.commands, notebooks);
    palette?.addItem({ command: CommandIDs.toggleCellKind, category: 'CodeAct' });
  }
};

const panel: JupyterFrontEndPlugin<void> = {
  id: 'codeact-kernel:panel',
  description: 'The CodeAct side panel and the status bar item that opens it.',
  autoStart: true,
  requires: [ICodeActTracker],
  optional: [IStatusBar, ILabShell, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    codeact: ICodeActTracker,
    statusBar: IStatusBar | null,
    _labShell: ILabShell | null,
    palette: ICommandPalette | null
  ) => {
    const view = new CodeActPanel(codeact);
    view.title.label = 'CodeAct';
    app.shell.add(view, 'right', { rank: 600 });
    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Open the CodeAct Panel',
      execute: () => app.shell.activateById(view.id)
    });
    palette?.addItem({ command: CommandIDs.openPanel, category: 'CodeAct' });
    statusBar?.registerStatusItem('codeact-kernel:status', {
      item: new CodeActStatus(codeact, () => void app.commands.execute(CommandIDs.openPanel)),
      align: 'left',
      rank: 10,
      isActive: () => !!codeact.current
    });
  }
};

export default [tracker, card, cells, panel];
