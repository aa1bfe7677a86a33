// A small msgpack encoder and decoder (the subset the hub speaks: nil, booleans, integers,
// floats, strings, binary, arrays, maps; extension types decode to {type, data}).
// Zero dependencies, so the browser pages import it as it is.

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: false });

export class MsgpackError extends Error {}

/**
 * Encode a value as msgpack bytes.
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function encode(value) {
  const w = new Writer();
  w.write(value, 0);
  return w.bytes();
}

/**
 * Decode one msgpack value from bytes.
 * @param {Uint8Array|ArrayBuffer|ArrayBufferView} data
 * @returns {any}
 */
export function decode(data) {
  const bytes =
    data instanceof Uint8Array
      ? data
      : ArrayBuffer.isView(data)
        ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        : new Uint8Array(data);
  const r = new Reader(bytes);
  const value = r.read(0);
  if (r.pos !== bytes.length) throw new MsgpackError("trailing bytes after the value");
  return value;
}

const MAX_DEPTH = 100;

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  bytes() {
    return this.buf.slice(0, this.pos);
  }

  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v) {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u16(v) {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  u32(v) {
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  raw(bytes) {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  write(v, depth) {
    if (depth > MAX_DEPTH) throw new MsgpackError("nested too deep");
    if (v === null || v === undefined) return this.u8(0xc0);
    switch (typeof v) {
      case "boolean":
        return this.u8(v ? 0xc3 : 0xc2);
      case "number":
        return this.number(v);
      case "bigint":
        return this.bigint(v);
      case "string":
        return this.string(v);
      case "object":
        break;
      default:
        throw new MsgpackError(`cannot encode a ${typeof v}`);
    }
    if (v instanceof Uint8Array || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
      const b = v instanceof Uint8Array ? v : ArrayBuffer.isView(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(v);
      if (b.length < 0x100) {
        this.u8(0xc4);
        this.u8(b.length);
      } else if (b.length < 0x10000) {
        this.u8(0xc5);
        this.u16(b.length);
      } else {
        this.u8(0xc6);
        this.u32(b.length);
      }
      return this.raw(b);
    }
    if (v instanceof Date) return this.string(v.toISOString());
    if (Array.isArray(v)) {
      this.header(v.length, 0x90, 0xdc, 0xdd);
      for (const item of v) this.write(item, depth + 1);
      return;
    }
    const entries =
      v instanceof Map ? [...v.entries()] : Object.entries(v).filter(([, x]) => x !== undefined);
    this.header(entries.length, 0x80, 0xde, 0xdf);
    for (const [k, x] of entries) {
      this.write(k, depth + 1);
      this.write(x, depth + 1);
    }
  }

  header(n, fix, c16, c32) {
    if (n < 16) this.u8(fix | n);
    else if (n < 0x10000) {
      this.u8(c16);
      this.u16(n);
    } else {
      this.u8(c32);
      this.u32(n);
    }
  }

  number(v) {
    if (!Number.isInteger(v)) {
      this.u8(0xcb);
      this.ensure(8);
      this.view.setFloat64(this.pos, v);
      this.pos += 8;
      return;
    }
    if (v >= 0) {
      if (v < 0x80) return this.u8(v);
      if (v < 0x100) {
        this.u8(0xcc);
        return this.u8(v);
      }
      if (v < 0x10000) {
        this.u8(0xcd);
        return this.u16(v);
      }
      if (v < 0x100000000) {
        this.u8(0xce);
        return this.u32(v);
      }
      return this.bigint(BigInt(v));
    }
    if (v >= -32) return this.u8(v & 0xff);
    if (v >= -0x80) {
      this.u8(0xd0);
      this.ensure(1);
      this.view.setInt8(this.pos++, v);
      return;
    }
    if (v >= -0x8000) {
      this.u8(0xd1);
      this.ensure(2);
      this.view.setInt16(this.pos, v);
      this.pos += 2;
      return;
    }
    if (v >= -0x80000000) {
      this.u8(0xd2);
      this.ensure(4);
      this.view.setInt32(this.pos, v);
      this.pos += 4;
      return;
    }
    return this.bigint(BigInt(v));
  }

  bigint(v) {
    this.ensure(9);
    if (v >= 0n) {
      if (v > 0xffffffffffffffffn) throw new MsgpackError("integer too large");
      this.u8(0xcf);
      this.view.setBigUint64(this.pos, v);
    } else {
      if (v < -0x8000000000000000n) throw new MsgpackError("integer too small");
      this.u8(0xd3);
      this.view.setBigInt64(this.pos, v);
    }
    this.pos += 8;
  }

  string(s) {
    const b = textEncoder.encode(s);
    if (b.length < 32) this.u8(0xa0 | b.length);
    else if (b.length < 0x100) {
      this.u8(0xd9);
      this.u8(b.length);
    } else if (b.length < 0x10000) {
      this.u8(0xda);
      this.u16(b.length);
    } else {
      this.u8(0xdb);
      this.u32(b.length);
    }
    this.raw(b);
  }
}

class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  need(n) {
    if (this.pos + n > this.b.length) throw new MsgpackError("truncated msgpack data");
  }

  u8() {
    this.need(1);
    return this.b[this.pos++];
  }

  num(kind, size) {
    this.need(size);
    const v = this.view[kind](this.pos);
    this.pos += size;
    return v;
  }

  big(signed) {
    this.need(8);
    const v = signed ? this.view.getBigInt64(this.pos) : this.view.getBigUint64(this.pos);
    this.pos += 8;
    // plain numbers where they are exact; BigInt beyond 2**53
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  }

  str(n) {
    this.need(n);
    const s = textDecoder.decode(this.b.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }

  bin(n) {
    this.need(n);
    const v = this.b.slice(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  arr(n, depth) {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.read(depth + 1);
    return out;
  }

  map(n, depth) {
    const out = {};
    for (let i = 0; i < n; i++) {
      const k = this.read(depth + 1);
      const key = typeof k === "string" ? k : String(k);
      const v = this.read(depth + 1);
      if (key === "__proto__") Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      else out[key] = v;
    }
    return out;
  }

  ext(n) {
    const type = this.num("getInt8", 1);
    return { type, data: this.bin(n) };
  }

  read(depth) {
    if (depth > MAX_DEPTH) throw new MsgpackError("nested too deep");
    const t = this.u8();
    if (t < 0x80) return t;
    if (t < 0x90) return this.map(t & 0x0f, depth);
    if (t < 0xa0) return this.arr(t & 0x0f, depth);
    if (t < 0xc0) return this.str(t & 0x1f);
    if (t >= 0xe0) return t - 0x100;
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.u8());
      case 0xc5: return this.bin(this.num("getUint16", 2));
      case 0xc6: return this.bin(this.num("getUint32", 4));
      case 0xc7: return this.ext(this.u8());
      case 0xc8: return this.ext(this.num("getUint16", 2));
      case 0xc9: return this.ext(this.num("getUint32", 4));
      case 0xca: return this.num("getFloat32", 4);
      case 0xcb: return this.num("getFloat64", 8);
      case 0xcc: return this.u8();
      case 0xcd: return this.num("getUint16", 2);
      case 0xce: return this.num("getUint32", 4);
      case 0xcf: return this.big(false);
      case 0xd0: return this.num("getInt8", 1);
      case 0xd1: return this.num("getInt16", 2);
      case 0xd2: return this.num("getInt32", 4);
      case 0xd3: return this.big(true);
      case 0xd4: return this.ext(1);
      case 0xd5: return this.ext(2);
      case 0xd6: return this.ext(4);
      case 0xd7: return this.ext(8);
      case 0xd8: return this.ext(16);
      case 0xd9: return this.str(this.u8());
      case 0xda: return this.str(this.num("getUint16", 2));
      case 0xdb: return this.str(this.num("getUint32", 4));
      case 0xdc: return this.arr(this.num("getUint16", 2), depth);
      case 0xdd: return this.arr(this.num("getUint32", 4), depth);
      case 0xde: return this.map(this.num("getUint16", 2), depth);
      case 0xdf: return this.map(this.num("getUint32", 4), depth);
      default:
        throw new MsgpackError(`unknown msgpack type byte 0x${t.toString(16)}`);
    }
  }
}
