// The two panels that keep their own data (REST-loaded): the customer panel beside the
// chat and the supervisor view, bound to the store and to the dialogs they open.

import { $ } from "/static/shared/dom.js";
import { conversationDialog } from "./dialogs/readers.js";
import { unfreezeDialog } from "./dialogs/unfreeze.js";
import { S, skills, t, token } from "./state.js";
import { requestVerification } from "./verification.js";
import { toggleCustomer } from "./views/conversation.js";
import { CustomerPanel } from "./views/customer.js";
import { queueActions } from "./views/queue.js";
import { toast } from "./views/notifications.js";
import { SupervisorView } from "./views/supervisor.js";

export const customer = new CustomerPanel({
  el: $("customer"),
  token,
  t,
  lang: () => S.lang,
  canUnfreeze: () => skills().includes("security"),
  onUnfreeze: (userId) => unfreezeDialog(userId),
  canVerify: () => skills().includes("security"),
  onVerify: (userId, cid) => requestVerification(userId, cid),
  onOpenConversation: (cid) => conversationDialog(cid),
  onClose: () => toggleCustomer(false),
});

export const supervisor = new SupervisorView({
  el: $("supervisor-view"),
  token,
  t,
  lang: () => S.lang,
  actions: queueActions,
  request: (frame) => S.client.request(frame),
  toast,
});
