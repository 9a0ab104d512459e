// Draws the dashboard's 32×32 favicon (a wave on a rounded square) as a
// PNG, so no image file or image tool is needed.
import { deflateSync } from "node:zlib";

function crc32(buf) {
  let c, crc = 0xffffffff;
  for (const b of buf) {
    c = (crc ^ b) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

export function favicon() {
  const n = 32;
  const px = Buffer.alloc(n * (n * 4 + 1));
  const wave = (x) => 16 - 6 * Math.sin(((x - 4) / 24) * 2 * Math.PI);
  for (let y = 0; y < n; y++) {
    px[y * (n * 4 + 1)] = 0; // filter: none
    for (let x = 0; x < n; x++) {
      const i = y * (n * 4 + 1) + 1 + x * 4;
      const cx = Math.max(6 - x, x - 25, 0), cy = Math.max(6 - y, y - 25, 0);
      const inside = cx * cx + cy * cy <= 36;
      const onWave = x >= 4 && x <= 28 && Math.abs(y - wave(x)) <= 1.6;
      const [r, g, b] = onWave ? [0x5f, 0xd0, 0xc5] : [0x1f, 0x3b, 0x57];
      px.set([r, g, b, inside ? 255 : 0], i);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(n, 0);
  ihdr.writeUInt32BE(n, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(px)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}
