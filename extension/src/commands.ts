/** The extension's commands; their shortcuts are in schema/plugin.json (rebindable in Settings). */
import { INotebookTracker } from '@jupyterlab/notebook';
import { CommandRegistry } from '@lumino/commands';

import { DecisionCard } from './decisioncard';
import { toggledSource } from './cellkind';

export const CommandIDs = {
  approve: 'codeact:approve',
  approveAllow: 'codeact:approve-and-allow',
  edit: 'codeact:edit',
  reject: 'codeact:reject',
  toggleCellKind: 'codeact:toggle-cell-kind',
  openPanel: 'codeact:open-panel'
};

export function addCardCommands(commands: CommandRegistry): void {
  const onCard = (label: string, act: (card: DecisionCard) => void) => ({
    label,
    isEnabled: () => !!DecisionCard.focused()?.pending,
    execute: () => {
      const card = DecisionCard.focused();
      if (card) {
        act(card);
      }
    }
  });
  commands.addCommand(CommandIDs.approve, onCard('Approve the Focused CodeAct Program or Call', card => card.approve()));
  commands.addCommand(
    CommandIDs.approveAllow,
    onCard('Approve and Allow: Its Tools for the Session, or the Call\'s Tool for the Run', card => card.approve(true))
  );
  commands.addCommand(CommandIDs.edit, onCard('Edit the Focused CodeAct Program', card => card.edit()));
  commands.addCommand(CommandIDs.reject, onCard('Reject the Focused CodeAct Program or Deny the Call', card => card.reject()));
}

export function addCellCommands(commands: CommandRegistry, notebooks: INotebookTracker): void {
  commands.addCommand(CommandIDs.toggleCellKind, {
    label: 'Switch the CodeAct Cell Between Prompt and Python',
    isEnabled: () => notebooks.activeCell?.model.type === 'code',
    execute: () => {
      const cell = notebooks.activeCell;
      if (cell && cell.model.type === 'code') {
        const source = cell.model.sharedModel;
        source.setSource(toggledSource(source.getSource()));
      }
    }
  });
}
