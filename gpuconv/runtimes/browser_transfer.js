// How arrays cross between gpuconv's Python side and its pages (WebGL2 and WebGPU), shared by both.
//
// Small arrays cross inline in the Playwright message as base64 strings of their little-endian
// bytes.  Large ones (at least message.blob_bytes) go outside it, each way by the fastest path
// measured here (4.8 MB, Chromium 156, Playwright 1.65):
// - uploads through the runtime's own server on the page's origin: an upload op names {blob: key}
//   and the page fetches /blob/<key> before the call's ops run (36-55 ms);
// - read-backs as one download per call: the call's large results are gathered, and at its end
//   (flush) handed to Chromium as one file, which Playwright saves and Python reads from disk; each
//   such result answers {download: name, offset, length} (54 ms; a POST of the same bytes to the
//   server took 730 ms, since Playwright copies every request body into its events, and inline
//   base64 227 ms).  Past Chromium's limit of downloads a second, {download: null, inline: base64}.
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
    revoke();
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

  let downloads = 0;
  let gathered = [];     // this call's large read-backs: {bytes, answer}
  let lastUrl = null;    // the previous call's file, revoked once Python has read it (the next call)

  // A read-back: base64 when small, else gathered for the call's download (flush).
  function send(bytes, blobBytes) {
    if (!blobBytes || bytes.byteLength < blobBytes) return encodeBytes(bytes);
    const answer = { download: null, offset: 0, length: bytes.byteLength };
    gathered.push({ bytes, answer });
    return answer;
  }

  // Chromium drops a frame's downloads beyond 10 a second (its throttle of URL download requests
  // from a RenderFrame, no switch to lift it); a call over this budget answers inline instead.
  let downloadsPerWindow = 8;
  let downloadWindowMs = 1200;
  let recent = [];  // performance.now() of the downloads started in the last window

  // Set the budget (for tests, and for a Chromium whose throttle differs).  What was spent stays
  // spent, as in Chromium's own count, unless `forget` (a caller that has waited out Chromium's
  // second).
  function downloadBudget(perWindow = 8, windowMs = 1200, forget = false) {
    downloadsPerWindow = perWindow;
    downloadWindowMs = windowMs;
    if (forget) recent = [];
  }

  // The end of a call that succeeded: its gathered read-backs as one download, in order (one file
  // a call, not one a read-back: a packed program's 8 outputs would spend the budget at once).
  function flush() {
    if (!gathered.length) return;
    const now = performance.now();
    recent = recent.filter((time) => now - time < downloadWindowMs);
    if (recent.length >= downloadsPerWindow) {
      for (const { bytes, answer } of gathered) Object.assign(answer, { inline: encodeBytes(bytes) });
      gathered = [];
      return;
    }
    recent.push(now);
    const name = "gpuconv-read-" + (++downloads) + ".bin";
    let offset = 0;
    for (const { bytes, answer } of gathered) {
      Object.assign(answer, { download: name, offset });
      offset += bytes.byteLength;
    }
    lastUrl = URL.createObjectURL(new Blob(gathered.map((item) => item.bytes)));
    gathered = [];
    const link = document.createElement("a");
    link.href = lastUrl;
    link.download = name;
    link.click();
  }

  // A call that failed answers no read-back.
  function discard() {
    gathered = [];
  }

  function revoke() {
    if (lastUrl !== null) URL.revokeObjectURL(lastUrl);
    lastUrl = null;
  }

  return { receive, send, flush, discard, downloadBudget, decodeBytes, encodeBytes };
})();
