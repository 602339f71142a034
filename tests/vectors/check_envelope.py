#!/usr/bin/env python3
"""Independent check of envelope.exp, written from the format description
in core/crypto.c rather than from its code: BLAKE2b for the KEK
(crypto_kdf_derive_from_key), HChaCha20 + ChaCha20-Poly1305-IETF for
XChaCha20-Poly1305, and the associated-data layout. Not run by make; needs
python3-cryptography. Usage: tests/vectors/check_envelope.py [FILE]"""
import hashlib
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305


def rotl(v, n):
    return ((v << n) & 0xffffffff) | (v >> (32 - n))


def hchacha20(key, nonce16):
    s = list(struct.unpack("<4I", b"expand 32-byte k"))
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_seal(key, nonce, plain, ad):
    sub = hchacha20(key, nonce[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0" * 4 + nonce[16:], plain, ad)


def kek(master):
    return hashlib.blake2b(b"", digest_size=32, key=master,
                           salt=struct.pack("<Q", 1) + b"\0" * 8,
                           person=b"sfs-kek1" + b"\0" * 8).digest()


def field(v):
    return b"\xff\xff" if v is None else struct.pack(">H", len(v)) + v


def ad(purpose, store, secret, version, keyid, keyversion):
    return (b"\x01" + field(purpose) + field(store) + field(secret) +
            struct.pack(">I", version) + field(keyid) +
            struct.pack(">I", keyversion))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/vectors/envelope.exp"
    n = 0
    for no, line in enumerate(open(path), 1):
        if not line.strip() or line.startswith("#"):
            continue
        f = dict(t.split("=", 1) for t in line.split())
        opt = lambda k: None if f[k] == "-" else f[k].encode()
        key = bytes.fromhex(f["key"])
        if "master" in f:
            assert kek(bytes.fromhex(f["master"])) == key, f"line {no}: kek"
        store = None if f["store"] == "-" else bytes.fromhex(f["store"])
        a = ad(f["purpose"].encode(), store, opt("secret"),
               int(f["version"]), opt("keyid"), int(f["keyversion"]))
        nonce = bytes.fromhex(f["nonce"])
        blob = b"\x01" + nonce + xchacha_seal(key, nonce,
                                              bytes.fromhex(f["plain"]), a)
        assert blob.hex() == f["blob"], f"line {no}: blob differs"
        n += 1
    print(f"{path}: {n} cases agree")


main()
