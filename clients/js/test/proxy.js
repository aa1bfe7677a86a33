// A TCP proxy between a client and the hub for tests: it can cut every connection (a
// network failure mid-stream), refuse new ones for a while, and deliver every WebSocket
// data frame from the server twice (a replay racing a live push, at its worst).

import net from "node:net";

export class FaultyProxy {
  /** @param {number} targetPort */
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.sockets = new Set();
    this.duplicate = false;
    this.refusing = false;
    this.server = net.createServer((client) => this._pipe(client));
  }

  /** @returns {Promise<number>} the port to connect to */
  listen() {
    return new Promise((resolve) => this.server.listen(0, "127.0.0.1", () => resolve(this.server.address().port)));
  }

  /** Destroy every open connection at once, both ways. */
  cut() {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  close() {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  _pipe(client) {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    this.sockets.add(client);
    this.sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.on("data", (d) => upstream.write(d));
    let handshake = true;
    let buf = Buffer.alloc(0);
    upstream.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (handshake) {
        const at = buf.indexOf("\r\n\r\n");
        if (at < 0) return;
        client.write(buf.subarray(0, at + 4));
        buf = buf.subarray(at + 4);
        handshake = false;
      }
      // server frames are unmasked: header, optional extended length, payload
      for (;;) {
        if (buf.length < 2) return;
        const opcode = buf[0] & 0x0f;
        let len = buf[1] & 0x7f;
        let head = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          head = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          head = 10;
        }
        if (buf.length < head + len) return;
        const frame = buf.subarray(0, head + len);
        buf = buf.subarray(head + len);
        client.write(frame);
        if (this.duplicate && (opcode === 1 || opcode === 2)) client.write(frame);
      }
    });
  }
}
