// RFC 6962 / RFC 9162 inclusion proofs and the checkpoint's signed note, checked in the
// browser with SubtleCrypto, so an auditor need not trust the server's own "verified".
"use strict";

const Merkle = (() => {
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (s) => {
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
    return out;
  };
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };

  // The leaf hash is SHA-256(0x00 || encoding): recomputed from the server's encoding so a
  // wrong leaf hash in a proof cannot pass.
  const leafHash = (encodingHex) => sha256(concat(Uint8Array.of(0), unhex(encodingHex)));
  const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

  // RFC 9162 section 2.1.3.2: the root an inclusion proof leads to.
  async function rootFromInclusion(leafIndex, treeSize, leaf, proof) {
    if (leafIndex >= treeSize) return null;
    let fn = leafIndex, sn = treeSize - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  // Checks the C2SP signed note: its body names the same size and root as the JSON, and
  // (where the browser has Ed25519) the signature verifies under the published key.
  async function checkNote(cp) {
    const split = cp.note.indexOf("\n\n");
    if (split < 0) return { body: false, signature: "bad" };
    const text = cp.note.slice(0, split + 1);
    const lines = text.split("\n");
    const body = lines[1] === String(cp.tree_size) && hex(b64(lines[2])) === cp.root_hash;
    let signature = "unsupported";
    try {
      // name+keyhash+base64key; the base64 key may itself contain "+".
      const [name, keyHash] = cp.public_key.split("+", 2);
      const key = b64(cp.public_key.slice(name.length + keyHash.length + 2));
      const sigLine = cp.note.slice(split + 2).split("\n").find((l) => l.startsWith("— " + name + " "));
      if (!sigLine) return { body, signature: "bad" };
      const sig = b64(sigLine.split(" ")[2]).slice(4);
      const k = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
      const ok = await crypto.subtle.verify({ name: "Ed25519" }, k, sig, new TextEncoder().encode(text));
      signature = ok ? "ok" : "bad";
    } catch (e) {
      signature = "unsupported";
    }
    return { body, signature };
  }

  return { hex, unhex, leafHash, rootFromInclusion, checkNote };
})();
