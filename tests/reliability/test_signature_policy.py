"""Signature policies (policy_path): row 40 of the matrix, against a real registry.

Images are signed the way cosign signs them: a simple-signing payload naming the digest and the
repository, signed with an ECDSA P-256 key, stored under the ``sha256-<hex>.sig`` tag. The module
runs for real (hangar_mirror, hangar_save) and the tests read what reached the destination.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.reliability.conftest import head_digest
from tests.support.images import build_image, build_signature, push_image, signature_tag

REJECTED = "rejected by the signature policy"


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def signer(key: ec.EllipticCurvePrivateKey):
    return lambda payload: key.sign(payload, ec.ECDSA(hashes.SHA256()))


@pytest.fixture(scope="module")
def keys() -> dict:
    return {"trusted": ec.generate_private_key(ec.SECP256R1()),
            "other": ec.generate_private_key(ec.SECP256R1())}


@pytest.fixture(scope="module")
def signed_source(registry_plain, keys, tmp_path_factory) -> dict:
    """``policy/<name>:1`` images in ``registry_plain``: signed, forged, mislabelled, unsigned."""
    layouts = tmp_path_factory.mktemp("policy-images")
    images = {}
    signers = {"signed": ("trusted", "policy/signed"), "forged": ("other", "policy/forged"),
               "elsewhere": ("trusted", "policy/other-name"), "unsigned": (None, None)}
    for name, (key_name, identity) in signers.items():
        built = build_image(layouts, name, kind="docker", seed=f"policy-{name}")
        push_image(built, registry_plain, f"policy/{name}", "1")
        images[name] = built.digest
        if key_name:
            signature = build_signature(layouts, f"{name}-sig", built.digest,
                                        f"{registry_plain.host}/{identity}",
                                        sign=signer(keys[key_name]))
            push_image(signature, registry_plain, f"policy/{name}", signature_tag(built.digest))
    return images


def write_policy(directory: Path, keys: dict, docker_scopes: dict,
                 default: list | None = None) -> Path:
    (directory / "trusted.pub").write_bytes(public_pem(keys["trusted"]))
    policy = {"default": default or [{"type": "insecureAcceptAnything"}],
              "transports": {"docker": docker_scopes}}
    path = directory / "policy.json"
    path.write_text(json.dumps(policy))
    return path


def sigstore(directory: Path, identity: str = "matchRepository") -> list:
    return [{"type": "sigstoreSigned", "keyPath": str(directory / "trusted.pub"),
             "signedIdentity": {"type": identity}}]


def test_mirror_copies_only_images_the_policy_accepts(
        registry_plain, signed_source, keys, dest_registry, run_module, project, tmp_path):
    policy = write_policy(tmp_path, keys, {f"{registry_plain.host}/policy": sigstore(tmp_path)})
    images = ["policy/signed:1", "policy/forged:1", "policy/elsewhere:1", "policy/unsigned:1"]

    outcome = run_module("hangar_mirror", images=images, src_registry=registry_plain.url,
                         dest_registry=dest_registry.url, dest_project=project,
                         policy_path=str(policy), create_projects=False)

    assert outcome.failed
    assert outcome.image("policy/signed").get("error") is None
    assert head_digest(dest_registry, f"{project}/signed", "1") == signed_source["signed"]
    scope = f"(scope {registry_plain.host}/policy)"
    expected = {
        "forged": "its signature does not verify with the policy's keys",
        "elsewhere": f"it is signed as {registry_plain.host}/policy/other-name, which "
                     "matchRepository does not accept",
        "unsigned": "a signature was required, but no signature exists",
    }
    for name, reason in expected.items():
        error = outcome.image(f"policy/{name}")["error"]
        assert f"{registry_plain.host}/policy/{name}:1: {REJECTED} {policy} {scope}" in error
        assert reason in error
        assert head_digest(dest_registry, f"{project}/{name}", "1") is None


def test_tagged_image_needs_the_tag_signed_under_the_default_identity(
        registry_plain, signed_source, keys, dest_registry, run_module, project, tmp_path):
    """matchRepoDigestOrExact: cosign signs the repository, so only a digest pin passes."""
    policy = write_policy(tmp_path, keys, {"": sigstore(tmp_path, "matchRepoDigestOrExact")})
    pinned = f"policy/signed@{signed_source['signed']}"

    outcome = run_module("hangar_mirror", images=["policy/signed:1", pinned],
                         src_registry=registry_plain.url, dest_registry=dest_registry.url,
                         dest_project=project, policy_path=str(policy), create_projects=False)

    assert "which matchRepoDigestOrExact does not accept" in outcome.image("signed:1")["error"]
    assert outcome.image(pinned)["action"] == "copied"


def test_reject_scope_refuses_before_any_write_and_other_scopes_go_on(
        registry_plain, signed_source, keys, dest_registry, run_module, project, tmp_path):
    scopes = {f"{registry_plain.host}/policy/unsigned": [{"type": "reject"}]}
    policy = write_policy(tmp_path, keys, scopes)

    outcome = run_module("hangar_save", images=["policy/unsigned:1", "policy/forged:1"],
                         src_registry=registry_plain.url, dest=str(tmp_path / "images.zip"),
                         policy_path=str(policy))

    assert "the policy rejects every image of this scope" in \
        outcome.image("policy/unsigned")["error"]
    assert outcome.image("policy/forged")["action"] == "copied"
    info = run_module("hangar_archive_info", path=str(tmp_path / "images.zip"))
    assert [image["reference"] for image in info.result["images"]] == \
        [f"{registry_plain.host}/policy/forged:1"]


def test_gpg_requirement_fails_its_images_with_a_clear_message(
        registry_plain, signed_source, keys, dest_registry, run_module, project, tmp_path):
    gpg = [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/etc/pki/gpg-key"}]
    policy = write_policy(tmp_path, keys, {f"{registry_plain.host}/policy/signed": gpg})

    outcome = run_module("hangar_mirror", images=["policy/signed:1"],
                         src_registry=registry_plain.url, dest_registry=dest_registry.url,
                         dest_project=project, policy_path=str(policy), create_projects=False)

    assert outcome.failed
    assert "it requires GPG signatures (signedBy), which this collection cannot verify" in \
        outcome.msg


@pytest.mark.parametrize("document, message", [
    ({"transports": {}}, "has no 'default' list"),
    ({"default": [{"type": "insecureAcceptAnything"}], "extra": 1}, "unknown key 'extra'"),
    ({"default": []}, "must be a non-empty list of requirements"),
    ({"default": [{"type": "trustMe"}]}, "unknown requirement type 'trustMe'"),
    ({"default": [{"type": "sigstoreSigned", "keyPath": "/a", "keyData": "Zm9v"}]},
     "give exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio or pki (found 2)"),
])
def test_invalid_policy_fails_the_task_before_any_request(
        registry_plain, run_module, tmp_path, document, message):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document))

    outcome = run_module("hangar_save", images=["policy/signed:1"],
                         src_registry=registry_plain.url, dest=str(tmp_path / "images.zip"),
                         policy_path=str(path))

    assert outcome.failed
    assert message in outcome.msg
    assert not (tmp_path / "images.zip").exists()
