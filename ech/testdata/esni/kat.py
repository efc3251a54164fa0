#!/usr/bin/env python3
"""Independent known-answer vector for echlab's ESNI code (ech/esni_*.go).

Written from the text of draft-ietf-tls-esni-03 (sections 4.1 and 5.1.1)
with Python's `cryptography` package, not from the Go code. It prints the
values TestESNIKnownAnswer compares against. Run: python3 kat.py
"""
import hashlib, hmac, struct
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives import serialization

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw

def u16(n): return struct.pack(">H", n)
def vec16(b): return u16(len(b)) + b

server_priv = bytes(range(1, 33))
client_priv = bytes(range(0x41, 0x61))
nonce = bytes(range(0xa0, 0xb0))
client_random = bytes(range(0x80, 0xa0))
tls_share = bytes(range(0xc0, 0xe0))  # the TLS key share in key_share (AAD only)
name = b"secret.lab.test"
padded_length = 260

server_pub = X25519PrivateKey.from_private_bytes(server_priv).public_key().public_bytes(*RAW)
client_pub = X25519PrivateKey.from_private_bytes(client_priv).public_key().public_bytes(*RAW)

def esnikeys(checksum):
    return (u16(0xff02) + checksum + vec16(b"public.lab.test")
            + vec16(u16(0x001d) + vec16(server_pub)) + vec16(u16(0x1301))
            + u16(padded_length) + struct.pack(">QQ", 1700000000, 1700086400) + vec16(b""))

checksum = hashlib.sha256(esnikeys(b"\0" * 4)).digest()[:4]
keys = esnikeys(checksum)
record_digest = hashlib.sha256(keys[2:]).digest()

z = X25519PrivateKey.from_private_bytes(client_priv).exchange(
    X25519PrivateKey.from_private_bytes(server_priv).public_key())
zx = hmac.new(b"\0" * 32, z, hashlib.sha256).digest()  # HKDF-Extract(0, Z)

def expand_label(secret, label, context, length):
    full = b"tls13 " + label
    info = u16(length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]

esni_contents = vec16(record_digest) + u16(0x001d) + vec16(client_pub) + client_random
ctx = hashlib.sha256(esni_contents).digest()
key = expand_label(zx, b"esni key", ctx, 16)
iv = expand_label(zx, b"esni iv", ctx, 12)

sni = vec16(b"\x00" + vec16(name))
inner = nonce + sni + b"\0" * (padded_length - len(sni))
aad = vec16(u16(0x001d) + vec16(tls_share))  # KeyShareClientHello
enc = AESGCM(key).encrypt(iv, inner, aad)
ext = u16(0x1301) + u16(0x001d) + vec16(client_pub) + vec16(record_digest) + vec16(enc)

for label, v in [("esni_keys", keys), ("record_digest", record_digest), ("z", z),
                 ("key", key), ("iv", iv), ("aad", aad), ("extension", ext)]:
    print(f"{label} {v.hex()}")
