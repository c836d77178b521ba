"""MLS (RFC 9420) public framing, parsed without keys and without I/O.

The delivery service reads only what MLS leaves in the clear: an MLSMessage's
wire format; a KeyPackage's ciphersuite, credential identity and KeyPackageRef
(RFC 9420 §5.2); the KeyPackageRefs a Welcome's secrets are encrypted to; a
PublicMessage's (group_id, epoch, sender, content_type) and, for a commit, the
proposals it carries by value and the committer's new LeafNode; a
PrivateMessage's (group_id, epoch, content_type). Anything that does not parse
raises ``WireError``; callers turn it into a 400. Nothing here decrypts.
"""

from __future__ import annotations

import hashlib

import attrs

MLS10 = 1
WIRE_PUBLIC, WIRE_PRIVATE, WIRE_WELCOME, WIRE_GROUP_INFO, WIRE_KEY_PACKAGE = 1, 2, 3, 4, 5
CONTENT_APPLICATION, CONTENT_PROPOSAL, CONTENT_COMMIT = 1, 2, 3
SENDER_MEMBER, SENDER_EXTERNAL, SENDER_NEW_MEMBER_PROPOSAL, SENDER_NEW_MEMBER_COMMIT = 1, 2, 3, 4
PROPOSAL_ADD, PROPOSAL_UPDATE, PROPOSAL_REMOVE, PROPOSAL_PSK = 1, 2, 3, 4
PROPOSAL_REINIT, PROPOSAL_EXTERNAL_INIT, PROPOSAL_GROUP_CONTEXT_EXTENSIONS = 5, 6, 7
CREDENTIAL_BASIC = 1
LEAF_SOURCE_KEY_PACKAGE, LEAF_SOURCE_UPDATE, LEAF_SOURCE_COMMIT = 1, 2, 3
#: MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, the one suite the server computes references for.
SUITE_X25519_AES128GCM_SHA256_ED25519 = 1
HASHES = {SUITE_X25519_AES128GCM_SHA256_ED25519: hashlib.sha256}
KEY_PACKAGE_REF_LABEL = b"MLS 1.0 KeyPackage Reference"


class WireError(ValueError):
    """The bytes are not the MLS structure they were meant to be."""


class Reader:
    """A cursor over TLS-presentation-language bytes with RFC 9420's varint-prefixed vectors."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.pos = offset

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError("truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def varint(self) -> int:
        first = self.uint(1)
        prefix = first >> 6
        if prefix == 3:
            raise WireError("invalid variable-length integer prefix")
        value = first & 0x3F
        for _ in range((1 << prefix) - 1):
            value = (value << 8) | self.uint(1)
        if prefix and value < (1 << (8 * (1 << (prefix - 1)) - 2)):
            raise WireError("variable-length integer not minimally encoded")
        return value

    def vector(self) -> bytes:
        return self.take(self.varint())

    def sub(self) -> Reader:
        """A reader over the next vector's body."""
        return Reader(self.vector())

    def done(self) -> bool:
        return self.pos == len(self.data)

    def end(self) -> None:
        if not self.done():
            raise WireError("trailing bytes")


def encode_varint(n: int) -> bytes:
    if n < 1 << 6:
        return n.to_bytes(1, "big")
    if n < 1 << 14:
        return (n | 0x4000).to_bytes(2, "big")
    if n < 1 << 30:
        return (n | 0x80000000).to_bytes(4, "big")
    raise WireError("vector too long")


def encode_vector(data: bytes) -> bytes:
    return encode_varint(len(data)) + data


@attrs.frozen
class LeafNode:
    identity: bytes  # the basic credential's identity (empty for other credential types)
    credential_type: int
    signature_key: bytes


@attrs.frozen
class KeyPackage:
    cipher_suite: int
    leaf: LeafNode
    raw: bytes  # the encoded KeyPackage (without the MLSMessage header)

    @property
    def identity(self) -> bytes:
        return self.leaf.identity

    def ref(self) -> bytes:
        return key_package_ref(self.cipher_suite, self.raw)


@attrs.frozen
class Welcome:
    cipher_suite: int
    new_members: tuple[bytes, ...]  # the KeyPackageRefs the group secrets are encrypted to


@attrs.frozen
class Proposal:
    proposal_type: int
    key_package: KeyPackage | None = None  # add
    removed: int | None = None  # remove: the leaf index
    leaf: LeafNode | None = None  # update


@attrs.frozen
class Commit:
    proposals: tuple[Proposal, ...]
    by_reference: int  # proposals named only by reference (the DS never saw them)
    path_leaf: LeafNode | None


@attrs.frozen
class Framed:
    """The clear header of a PublicMessage or PrivateMessage."""

    wire_format: int
    group_id: bytes
    epoch: int
    content_type: int
    sender_type: int | None = None  # public messages only
    sender_index: int | None = None
    commit: Commit | None = None


def key_package_ref(cipher_suite: int, raw_key_package: bytes) -> bytes:
    """RefHash("MLS 1.0 KeyPackage Reference", KeyPackage) (RFC 9420 §5.2)."""
    hash_fn = HASHES.get(cipher_suite)
    if hash_fn is None:
        raise WireError(f"unsupported ciphersuite {cipher_suite}")
    return hash_fn(encode_vector(KEY_PACKAGE_REF_LABEL) + encode_vector(raw_key_package)).digest()


def _header(data: bytes) -> tuple[int, Reader]:
    reader = Reader(data)
    if reader.uint(2) != MLS10:
        raise WireError("not an MLS 1.0 message")
    return reader.uint(2), reader


def wire_format_of(data: bytes) -> int:
    return _header(data)[0]


def _credential(reader: Reader) -> tuple[int, bytes]:
    credential_type = reader.uint(2)
    if credential_type == CREDENTIAL_BASIC:
        return credential_type, reader.vector()
    if credential_type == 2:  # x509: certificates<V>
        reader.vector()
        return credential_type, b""
    raise WireError(f"unknown credential type {credential_type}")


def _leaf_node(reader: Reader) -> LeafNode:
    reader.vector()  # encryption_key
    signature_key = reader.vector()
    credential_type, identity = _credential(reader)
    capabilities = reader  # versions, cipher_suites, extensions, proposals, credentials: five vectors
    for _ in range(5):
        capabilities.vector()
    source = reader.uint(1)
    if source == LEAF_SOURCE_KEY_PACKAGE:
        reader.take(16)  # lifetime: not_before, not_after
    elif source == LEAF_SOURCE_COMMIT:
        reader.vector()  # parent_hash
    elif source != LEAF_SOURCE_UPDATE:
        raise WireError(f"unknown leaf node source {source}")
    reader.vector()  # extensions
    reader.vector()  # signature
    return LeafNode(identity, credential_type, signature_key)


def _key_package(reader: Reader) -> KeyPackage:
    start = reader.pos
    if reader.uint(2) != MLS10:
        raise WireError("KeyPackage is not for MLS 1.0")
    cipher_suite = reader.uint(2)
    reader.vector()  # init_key
    leaf = _leaf_node(reader)
    reader.vector()  # extensions
    reader.vector()  # signature
    return KeyPackage(cipher_suite, leaf, reader.data[start:reader.pos])


def parse_key_package(data: bytes) -> KeyPackage:
    """An MLSMessage holding a KeyPackage."""
    wire_format, reader = _header(data)
    if wire_format != WIRE_KEY_PACKAGE:
        raise WireError("not a KeyPackage message")
    key_package = _key_package(reader)
    reader.end()
    return key_package


def parse_welcome(data: bytes) -> Welcome:
    """An MLSMessage holding a Welcome: its suite and the KeyPackageRefs of its new members."""
    wire_format, reader = _header(data)
    if wire_format != WIRE_WELCOME:
        raise WireError("not a Welcome message")
    cipher_suite = reader.uint(2)
    secrets = reader.sub()
    refs: list[bytes] = []
    while not secrets.done():
        refs.append(secrets.vector())
        secrets.vector()  # kem_output
        secrets.vector()  # ciphertext
    reader.vector()  # encrypted_group_info
    reader.end()
    return Welcome(cipher_suite, tuple(refs))


def _psk_id(reader: Reader) -> None:
    psk_type = reader.uint(1)
    if psk_type == 1:  # external
        reader.vector()
    elif psk_type == 2:  # resumption: usage, psk_group_id, psk_epoch
        reader.uint(1)
        reader.vector()
        reader.uint(8)
    else:
        raise WireError(f"unknown psk type {psk_type}")
    reader.vector()  # psk_nonce


def _proposal(reader: Reader) -> Proposal:
    proposal_type = reader.uint(2)
    if proposal_type == PROPOSAL_ADD:
        return Proposal(proposal_type, key_package=_key_package(reader))
    if proposal_type == PROPOSAL_UPDATE:
        return Proposal(proposal_type, leaf=_leaf_node(reader))
    if proposal_type == PROPOSAL_REMOVE:
        return Proposal(proposal_type, removed=reader.uint(4))
    if proposal_type == PROPOSAL_PSK:
        _psk_id(reader)
    elif proposal_type == PROPOSAL_REINIT:
        reader.vector()  # group_id
        reader.uint(2)  # version
        reader.uint(2)  # cipher_suite
        reader.vector()  # extensions
    elif proposal_type in (PROPOSAL_EXTERNAL_INIT, PROPOSAL_GROUP_CONTEXT_EXTENSIONS):
        reader.vector()
    else:
        raise WireError(f"unknown proposal type {proposal_type}")
    return Proposal(proposal_type)


def _commit(reader: Reader) -> Commit:
    proposals: list[Proposal] = []
    by_reference = 0
    items = reader.sub()
    while not items.done():
        kind = items.uint(1)
        if kind == 1:
            proposals.append(_proposal(items))
        elif kind == 2:
            items.vector()
            by_reference += 1
        else:
            raise WireError(f"unknown ProposalOrRef type {kind}")
    path_leaf = None
    present = reader.uint(1)
    if present == 1:
        path_leaf = _leaf_node(reader)
        reader.vector()  # UpdatePathNode nodes<V>
    elif present != 0:
        raise WireError("bad optional<UpdatePath>")
    return Commit(tuple(proposals), by_reference, path_leaf)


def parse_framed(data: bytes) -> Framed:
    """A PublicMessage or PrivateMessage: its clear header, and a public commit's contents."""
    wire_format, reader = _header(data)
    if wire_format == WIRE_PRIVATE:
        group_id = reader.vector()
        epoch = reader.uint(8)
        content_type = reader.uint(1)
        reader.vector()  # authenticated_data
        reader.vector()  # encrypted_sender_data
        reader.vector()  # ciphertext
        reader.end()
        _check_content_type(content_type)
        return Framed(wire_format, group_id, epoch, content_type)
    if wire_format != WIRE_PUBLIC:
        raise WireError("not a PublicMessage or PrivateMessage")
    group_id = reader.vector()
    epoch = reader.uint(8)
    sender_type = reader.uint(1)
    sender_index = None
    if sender_type in (SENDER_MEMBER, SENDER_EXTERNAL):
        sender_index = reader.uint(4)
    elif sender_type not in (SENDER_NEW_MEMBER_PROPOSAL, SENDER_NEW_MEMBER_COMMIT):
        raise WireError(f"unknown sender type {sender_type}")
    reader.vector()  # authenticated_data
    content_type = reader.uint(1)
    _check_content_type(content_type)
    commit = None
    if content_type == CONTENT_APPLICATION:
        reader.vector()
    elif content_type == CONTENT_PROPOSAL:
        _proposal(reader)
    else:
        commit = _commit(reader)
    # The rest (auth data, membership tag) is signatures and MACs the DS cannot check without keys.
    return Framed(wire_format, group_id, epoch, content_type, sender_type, sender_index, commit)


def _check_content_type(content_type: int) -> None:
    if content_type not in (CONTENT_APPLICATION, CONTENT_PROPOSAL, CONTENT_COMMIT):
        raise WireError(f"unknown content type {content_type}")
