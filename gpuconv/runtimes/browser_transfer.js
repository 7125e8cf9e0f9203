// How arrays cross between gpuconv's Python side and its pages (WebGL2 and WebGPU), shared by both.
//
// Small arrays cross inline in the Playwright message as base64 strings of their little-endian
// bytes.  Large ones cross through the runtime's own server on the page's origin
// (gpuconv/runtimes/page_server.py): an upload op names {blob: key} and the page fetches
// /blob/<key> before the call's ops run; a read-back of at least message.blob_bytes is posted to
// /blob/<key> and answered as {blob: key}.  Playwright carries a message as JSON (~10 MB/s here);
// the server is a socket copy.
"use strict";

globalThis.gpuconvTransfer = (() => {
  // Chromium 133+ has Uint8Array.fromBase64 / toBase64; the loops are for older browsers.
  function decodeBytes(text) {
    if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text);
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function encodeBytes(bytes) {
    if (typeof bytes.toBase64 === "function") return bytes.toBase64();
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  // Every op's bytes: fetched from the server ({blob}) or decoded ({data}), as op.payload.
  async function receive(ops) {
    await Promise.all(ops.map(async (op) => {
      if (op.blob !== undefined) {
        const response = await fetch("/blob/" + op.blob, { cache: "no-store" });
        if (!response.ok) throw new Error("array " + op.blob + " is not on gpuconv's server (" + response.status + ")");
        op.payload = new Uint8Array(await response.arrayBuffer());
      } else if (typeof op.data === "string") {
        op.payload = decodeBytes(op.data);
      }
    }));
  }

  let posted = 0;
  // A read-back: base64 when small, else posted to the server and answered as {blob: key}.
  async function send(bytes, blobBytes) {
    if (!blobBytes || bytes.byteLength < blobBytes) return encodeBytes(bytes);
    const key = "r" + (++posted);
    const response = await fetch("/blob/" + key, { method: "POST", body: bytes });
    if (!response.ok) throw new Error("posting a read-back to gpuconv's server failed (" + response.status + ")");
    return { blob: key };
  }

  return { receive, send, decodeBytes, encodeBytes };
})();
