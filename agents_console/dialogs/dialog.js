// The console's one modal <dialog>: a title, a body and a footer of buttons.

import { $, mount } from "/static/shared/dom.js";

export function openDialog(title, body, foot) {
  const dlg = $("dlg");
  $("dlg-title").textContent = title;
  mount($("dlg-body"), body);
  mount($("dlg-foot"), foot);
  $("dlg-foot").hidden = !foot.length;
  if (!dlg.open) dlg.showModal();
}

/** Replace the body of the open dialog (once what it shows has loaded). */
export function setDialogBody(...children) {
  mount($("dlg-body"), ...children);
}

export function closeDialog() {
  const dlg = $("dlg");
  if (dlg.open) dlg.close();
}

export const isDialogOpen = () => $("dlg").open;
