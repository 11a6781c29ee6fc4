# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signature policy: the part of containers-policy.json(5) that the copy modules enforce.

A policy is read only when a task names it (``policy_path``); without one every image is
accepted, as skopeo's ``--insecure-policy`` does. The file is parsed as strictly as
containers/image parses it: an unknown key or a missing ``default`` rejects the whole file.

Supported requirements, for the ``docker`` transport (images read from a registry):
``insecureAcceptAnything``, ``reject`` and ``sigstoreSigned`` with ``keyPath``, ``keyPaths``,
``keyData`` or ``keyDatas`` (cosign public keys: ECDSA, RSA or Ed25519, signatures over SHA-256,
as containers/image verifies them), with every ``signedIdentity`` but ``remapIdentity``. A
requirement this collection cannot check (GPG ``signedBy``, keyless ``fulcio``, ``pki``,
``remapIdentity``) fails the images it applies to with a message saying so, rather than passing
them unchecked; images under other scopes are not affected.

The cosign signatures of an image are the layers of the manifest tagged ``sha256-<hex>.sig`` in
the image's repository: each layer's blob is the signed payload, its annotation
``dev.cosignproject.cosign/signature`` the base64 signature. The payload must name the image's
digest and, as ``signedIdentity`` asks, its reference.
"""

from __future__ import annotations

import base64
import binascii
import json
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.platform import signature_tags
from ansible_collections.airgap.hangar.plugins.module_utils.reference import (
    Reference,
    ReferenceError as BadReference,
    parse_reference,
)

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
except ImportError:
    CRYPTOGRAPHY_IMPORT_ERROR: Optional[str] = traceback.format_exc()
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

COSIGN_PAYLOAD = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE = "dev.cosignproject.cosign/signature"
COSIGN_TYPE = "cosign container image signature"
PAYLOAD_LIMIT = 1 << 20  # a cosign payload is a few hundred bytes

_ACCEPT, _REJECT, _SIGSTORE = "insecureAcceptAnything", "reject", "sigstoreSigned"
_UNSUPPORTED = {"signedBy": "GPG signatures (signedBy)"}
_REQUIREMENT_KEYS = {
    _ACCEPT: {"type"},
    _REJECT: {"type"},
    _SIGSTORE: {"type", "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki",
                "rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData",
                "rekorPublicKeyDatas", "signedIdentity"},
    "signedBy": {"type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"},
}
_KEY_SOURCES = ("keyPath", "keyPaths", "keyData", "keyDatas")
_IDENTITY_TYPES = {
    "matchRepoDigestOrExact": set(), "matchExact": set(), "matchRepository": set(),
    "exactReference": {"dockerReference"}, "exactRepository": {"dockerRepository"},
    "remapIdentity": {"prefix", "signedPrefix"},
}


class PolicyError(HangarError):
    """The policy file cannot be used: unreadable, not JSON, or not a valid policy."""


class PolicyRejection(HangarError):
    """The policy does not let an image be copied."""


@dataclass
class Requirement:
    kind: str
    settings: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Signature:
    payload: bytes
    signature: bytes


class SignaturePolicy:
    """A parsed policy; check() decides for one image."""

    def __init__(self, path: str, default: List[Requirement],
                 scopes: Dict[str, List[Requirement]]) -> None:
        self.path = path
        self.default = default
        self.scopes = scopes

    @classmethod
    def load(cls, path: str) -> SignaturePolicy:
        try:
            with open(path, "rb") as handle:
                document = json.loads(handle.read())
        except OSError as exc:
            raise PolicyError(f"cannot read signature policy {path}: {exc.strerror}; check "
                              "policy_path") from exc
        except ValueError as exc:
            raise PolicyError(f"signature policy {path} is not valid JSON: {exc}") from exc
        return cls(path, *_parse_policy(document, path))

    def requirements(self, ref: Reference) -> Tuple[str, List[Requirement]]:
        """The requirements for ``ref`` and the scope they come from, most specific first."""
        for scope in _scopes_of(ref):
            if scope in self.scopes:
                return (scope or "docker transport default"), self.scopes[scope]
        return "default", self.default

    def check(self, source: Any, ref: Reference, digest: str) -> None:
        """Raise PolicyRejection unless every requirement for ``ref`` holds for ``digest``.

        ``source`` is the copy engine's image source (tag_exists, top, read_blob).
        """
        scope, requirements = self.requirements(ref)
        for requirement in requirements:
            reason = self._unmet(requirement, source, ref, digest)
            if reason:
                raise PolicyRejection(
                    f"{ref}: rejected by the signature policy {self.path} (scope {scope}): "
                    f"{reason}")

    def _unmet(self, requirement: Requirement, source: Any, ref: Reference,
               digest: str) -> str:
        if requirement.kind == _ACCEPT:
            return ""
        if requirement.kind == _REJECT:
            return "the policy rejects every image of this scope"
        if requirement.kind in _UNSUPPORTED:
            return (f"it requires {_UNSUPPORTED[requirement.kind]}, which this collection "
                    "cannot verify; verify with skopeo, or use sigstoreSigned with cosign keys")
        return _sigstore_unmet(requirement.settings, self.path, source, ref, digest)


# -- parsing -------------------------------------------------------------------------------------


def _parse_policy(document: Any, path: str) -> Tuple[List[Requirement], Dict[str, List]]:
    if not isinstance(document, dict):
        raise PolicyError(f"signature policy {path} is not a JSON object")
    _only_keys(document, {"default", "transports"}, f"signature policy {path}")
    if "default" not in document:
        raise PolicyError(f"signature policy {path} has no 'default' list; every policy needs "
                          "one, e.g. [{\"type\": \"insecureAcceptAnything\"}]")
    default = _requirements(document["default"], f"{path} default")
    transports = document.get("transports") or {}
    if not isinstance(transports, dict):
        raise PolicyError(f"signature policy {path}: 'transports' must be an object")
    scopes: Dict[str, List[Requirement]] = {}
    for scope, items in (transports.get("docker") or {}).items():
        scopes[scope] = _requirements(items, f"{path} transports.docker[{scope!r}]")
    return default, scopes


def _requirements(items: Any, where: str) -> List[Requirement]:
    if not isinstance(items, list) or not items:
        raise PolicyError(f"signature policy {where}: must be a non-empty list of requirements")
    return [_requirement(item, where) for item in items]


def _requirement(item: Any, where: str) -> Requirement:
    kind = item.get("type") if isinstance(item, dict) else None
    if kind not in _REQUIREMENT_KEYS:
        raise PolicyError(f"signature policy {where}: unknown requirement type {kind!r}; "
                          f"expected one of {', '.join(sorted(_REQUIREMENT_KEYS))}")
    _only_keys(item, _REQUIREMENT_KEYS[kind], f"signature policy {where} ({kind})")
    if kind == _SIGSTORE:
        _check_sigstore(item, where)
    return Requirement(kind, {k: v for k, v in item.items() if k != "type"})


def _check_sigstore(item: Dict[str, Any], where: str) -> None:
    given = [key for key in _KEY_SOURCES + ("fulcio", "pki") if key in item]
    if len(given) != 1:
        raise PolicyError(
            f"signature policy {where} (sigstoreSigned): give exactly one of "
            f"{', '.join(_KEY_SOURCES)}, fulcio or pki (found {len(given)})")
    identity = item.get("signedIdentity")
    if identity is not None:
        kind = identity.get("type") if isinstance(identity, dict) else None
        if kind not in _IDENTITY_TYPES:
            raise PolicyError(f"signature policy {where}: unknown signedIdentity type {kind!r}")
        _only_keys(identity, {"type"} | _IDENTITY_TYPES[kind], f"signature policy {where}")


def _only_keys(document: Dict[str, Any], allowed: set, where: str) -> None:
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r}; the policy file is rejected "
                          "whole, as containers/image rejects it")


def _scopes_of(ref: Reference) -> List[str]:
    """Scopes that may apply to ``ref``, most specific first (containers-policy.json(5))."""
    repository = f"{ref.registry}/{ref.repository}"
    scopes = []
    if ref.tag:
        scopes.append(f"{repository}:{ref.tag}")
    if ref.digest:
        scopes.append(f"{repository}@{ref.digest}")
    parts = repository.split("/")
    scopes.extend("/".join(parts[:end]) for end in range(len(parts), 0, -1))
    host = ref.registry.split(":", maxsplit=1)[0]
    labels = host.split(".")
    scopes.extend("*." + ".".join(labels[start:]) for start in range(1, len(labels)))
    scopes.append("")
    return scopes


# -- sigstoreSigned ------------------------------------------------------------------------------


def _sigstore_unmet(settings: Dict[str, Any], path: str, source: Any, ref: Reference,
                    digest: str) -> str:
    if not any(key in settings for key in _KEY_SOURCES):
        return ("it requires keyless (fulcio) or PKI sigstore signatures, which this "
                "collection cannot verify; use keyPath or keyData with the cosign public key")
    identity = settings.get("signedIdentity") or {"type": "matchRepoDigestOrExact"}
    if identity["type"] == "remapIdentity":
        return "its signedIdentity remapIdentity is not supported by this collection"
    if CRYPTOGRAPHY_IMPORT_ERROR:
        raise PolicyError("verifying signatures needs the Python package cryptography on the "
                          "managed host; pip install cryptography")

    keys = _public_keys(settings, path)
    signatures = _signatures(source, ref, digest)
    if not signatures:
        return "a signature was required, but no signature exists"

    problems = []
    for signature in signatures:
        problem = _signature_problem(signature, keys, ref, digest, identity)
        if not problem:
            return ""
        problems.append(problem)
    return f"none of its {len(signatures)} signature(s) is acceptable: {'; '.join(problems)}"


def _public_keys(settings: Dict[str, Any], path: str) -> List[Any]:
    pems: List[Tuple[str, bytes]] = []
    for key_path in ([settings["keyPath"]] if "keyPath" in settings else []) + \
            list(settings.get("keyPaths") or []):
        try:
            with open(key_path, "rb") as handle:
                pems.append((key_path, handle.read()))
        except OSError as exc:
            raise PolicyError(f"signature policy {path}: cannot read public key {key_path}: "
                              f"{exc.strerror}") from exc
    for data in ([settings["keyData"]] if "keyData" in settings else []) + \
            list(settings.get("keyDatas") or []):
        pems.append(("keyData", _base64(data, f"signature policy {path}: keyData")))
    return [_load_key(name, pem, path) for name, pem in pems]


def _load_key(name: str, pem: bytes, path: str) -> Any:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise PolicyError(f"signature policy {path}: {name} is not a PEM public key") from exc
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey,
                            ed25519.Ed25519PublicKey)):
        raise PolicyError(f"signature policy {path}: {name} is neither an ECDSA, RSA nor "
                          "Ed25519 public key")
    return key


def _signatures(source: Any, ref: Reference, digest: str) -> List[Signature]:
    tag = signature_tags(digest)[0]
    if not source.tag_exists(ref, tag):
        return []
    manifest = source.top(ref.replace(tag=tag, digest=None))
    found = []
    for layer in manifest.document.get("layers") or []:
        encoded = (layer.get("annotations") or {}).get(COSIGN_SIGNATURE)
        if layer.get("mediaType") != COSIGN_PAYLOAD or not encoded:
            continue
        if int(layer.get("size") or 0) > PAYLOAD_LIMIT:
            continue
        payload = source.read_blob(ref, layer["digest"])
        found.append(Signature(payload, _base64(encoded, f"{ref} signature annotation")))
    return found


def _signature_problem(signature: Signature, keys: List[Any], ref: Reference, digest: str,
                       identity: Dict[str, Any]) -> str:
    if not any(_verifies(key, signature) for key in keys):
        return "its signature does not verify with the policy's keys"
    try:
        critical = json.loads(signature.payload)["critical"]
        signed_digest = critical["image"]["docker-manifest-digest"]
        signed_reference = critical["identity"]["docker-reference"]
        kind = critical["type"]
    except (ValueError, KeyError, TypeError):
        return "its payload is not a cosign simple-signing document"
    if kind != COSIGN_TYPE:
        return f"its payload type is {kind!r}, not {COSIGN_TYPE!r}"
    if signed_digest != digest:
        return f"it signs {signed_digest}, not {digest}"
    return _identity_problem(identity, ref, signed_reference)


def _verifies(key: Any, signature: Signature) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature.signature, signature.payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature.signature, signature.payload, padding.PKCS1v15(),
                       hashes.SHA256())
        else:
            key.verify(signature.signature, signature.payload)
    except InvalidSignature:
        return False
    return True


def _identity_problem(identity: Dict[str, Any], ref: Reference, signed: str) -> str:
    """Compare the signed reference with the image as ``signedIdentity`` says."""
    try:
        signed_exact, signed_repository = _exact_and_repository(signed)
    except BadReference:
        return f"its signed identity {signed!r} is not an image reference"
    kind = identity["type"]
    if kind == "exactReference":
        same = signed_exact == _exact_and_repository(identity["dockerReference"])[0]
    elif kind == "exactRepository":
        same = signed_repository == _exact_and_repository(identity["dockerRepository"])[1]
    elif kind == "matchRepository" or (kind == "matchRepoDigestOrExact" and not ref.tag):
        same = signed_repository == ref.qualified_repository
    else:
        # matchExact, and matchRepoDigestOrExact for a tagged image: the tag must be signed.
        same = signed_exact == str(ref.replace(digest=None) if ref.tag else ref)
    if same:
        return ""
    return f"it is signed as {signed}, which {kind} does not accept for {ref}"


def _exact_and_repository(text: str) -> Tuple[str, str]:
    """A signed reference as written (no ``latest`` added) and its repository, normalised.

    Parsing maps Docker Hub's other names (cosign writes index.docker.io) to docker.io.
    """
    parsed = parse_reference(text)
    name = text.split("@", maxsplit=1)[0].rsplit("/", maxsplit=1)[-1]
    exact = parsed.qualified_repository
    if ":" in name:
        exact += f":{parsed.tag}"
    if parsed.digest:
        exact += f"@{parsed.digest}"
    return exact, parsed.qualified_repository


def _base64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PolicyError(f"{what} is not valid base64") from exc
