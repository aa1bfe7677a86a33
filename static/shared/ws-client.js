// The pages' WebSocket client is the JavaScript client library (clients/js, served at
// /clients/js/): this module only keeps the old import path working.

export { HubClient, HubError, SUBPROTOCOL, clientMsgId } from "/clients/js/index.js";
